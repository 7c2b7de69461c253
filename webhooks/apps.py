from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from control_tower.events import EventType, register_event_type, subscribe
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
