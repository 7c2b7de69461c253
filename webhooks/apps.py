from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from control_tower.events import EventType, register_event_type, subscribe
        from control_tower.tenancy import carrier_scope
        from webhooks.fanout import fan_out

        # The durable subscriber that fans events out to subscriptions (docs/WEBHOOKS.md).
        # History recorded after the fact (backfill) is not news for integrators: not sent.
        subscribe("*", fan_out, name="webhooks.fanout", backfill=False)
        # The ping of `POST /webhook-endpoints/{id}/test/`: sent to one endpoint directly,
        # never through the outbox, so it is not durable and no one can subscribe to it.
        register_event_type(
            EventType(
                "webhook.test",
                1,
                "webhook_endpoint",
                durable=False,
                description="A test ping sent on request to one webhook endpoint.",
            ),
            replace=True,
        )
        # How these models reach a carrier (tenancy/carrier_scope.py reads these tables; the
        # entries belong there, added here so this app stays within its own files).
        carrier_scope.CARRIER_PATHS.setdefault("webhooks.WebhookEndpoint", "carrier")
        carrier_scope.CARRIER_PATHS.setdefault("webhooks.WebhookDelivery", "endpoint__carrier")
        carrier_scope.CARRIER_PATHS.setdefault(
            "webhooks.WebhookAttempt", "delivery__endpoint__carrier"
        )
        carrier_scope.ORGANIZATION_ONLY = carrier_scope.ORGANIZATION_ONLY | {
            "webhooks.WebhookSettings"
        }
