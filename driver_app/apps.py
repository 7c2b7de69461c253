from django.apps import AppConfig


class DriverAppConfig(AppConfig):
    """The driver's phone app (`/driver/`): a web app over the public API, signed in with a
    device token bound to the driver (docs/DRIVER_APP.md)."""

    name = "driver_app"
    label = "driver_app"
    verbose_name = "Driver app"
