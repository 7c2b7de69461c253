from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Durable subscribers are registered here (docs/NOTIFICATIONS.md); customers are never
        # told about history recorded after the fact (backfill=False).
        from notifications import triggers

        triggers.register()
