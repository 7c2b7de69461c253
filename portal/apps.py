from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # The console is one consumer of the event catalog: it turns committed events into
        # websocket messages. Services never import it.
        from portal import events

        events.register()

        # Tracking tokens never reach the logs (access logs name their hash).
        from portal.tracking_page import redaction

        redaction.install()
