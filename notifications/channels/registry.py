"""Which backend carries each channel: e-mail through Django's e-mail backends (settings
EMAIL_BACKEND; SMTP in production and tests), SMS through `NOTIFICATIONS_SMS_BACKEND` (a
dotted path to an `SmsBackend` class; the console backend by default)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from notifications.channels.base import SmsBackend

DEFAULT_SMS_BACKEND = "notifications.channels.console.ConsoleSmsBackend"


@cache
def _sms_backend(path: str) -> SmsBackend:
    return import_string(path)()


def get_sms_backend(name: str | None = None) -> SmsBackend:
    """The configured SMS backend (or the one registered under `name`, for callbacks that
    name their provider in the URL). Raises LookupError for an unknown name."""
    path = getattr(settings, "NOTIFICATIONS_SMS_BACKEND", DEFAULT_SMS_BACKEND)
    backend = _sms_backend(path)
    if name is not None and name != backend.name:
        raise LookupError(f"No SMS backend named {name!r} is configured.")
    return backend


def reset_backends() -> None:
    """Forget the built backends (tests that change the settings)."""
    _sms_backend.cache_clear()
