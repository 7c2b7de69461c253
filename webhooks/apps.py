from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # The durable subscriber that fans events out to subscriptions (docs/WEBHOOKS.md).
        pass
