"""Webhook subscriptions and their deliveries (docs/WEBHOOKS.md)."""
