"""Notification services: creating messages (messages.py), sending and recording them
(delivery.py), and recipients' consent (preferences.py)."""
