"""Notifications to recipients and staff (docs/NOTIFICATIONS.md)."""
