from django.apps import AppConfig


class CarrierFeedsConfig(AppConfig):
    name = "carriers.feeds"
    label = "carrier_feeds"
    verbose_name = "Carrier feeds"
