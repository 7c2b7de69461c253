"""Which backend carries each channel: e-mail through Django's e-mail backends (settings
EMAIL_BACKEND; SMTP in production and tests), SMS through `NOTIFICATIONS_SMS_BACKEND` (a
dotted path to an `SmsBackend` class; the console backend by default). Shipped SMS backends:

- `notifications.channels.console.ConsoleSmsBackend`: the log (and NOTIFICATIONS_SMS_FILE);
- `notifications.channels.console.FileSmsBackend`: the same, always into a file (development);
- `notifications.channels.twilio.TwilioSmsBackend`: Twilio's Messages API.
"""

from __future__ import annotations

import threading

from django.conf import settings
from django.utils.module_loading import import_string

from notifications.channels.base import SmsBackend

DEFAULT_SMS_BACKEND = "notifications.channels.console.ConsoleSmsBackend"

# Built once per dotted path: a backend may hold a connection pool (Twilio's HTTP client).
_built: dict[str, SmsBackend] = {}
_lock = threading.Lock()


def _sms_backend(path: str) -> SmsBackend:
    backend = _built.get(path)
    if backend is None:
        with _lock:
            backend = _built.get(path)
            if backend is None:
                backend = _built[path] = import_string(path)()
    return backend


def get_sms_backend(name: str | None = None) -> SmsBackend:
    """The configured SMS backend (or the one registered under `name`, for callbacks that
    name their provider in the URL). Raises LookupError for an unknown name."""
    path = getattr(settings, "NOTIFICATIONS_SMS_BACKEND", DEFAULT_SMS_BACKEND)
    backend = _sms_backend(path)
    if name is not None and name != backend.name:
        raise LookupError(f"No SMS backend named {name!r} is configured.")
    return backend


def reset_backends() -> None:
    """Forget the built backends, closing their pooled connections (tests that change the
    settings)."""
    with _lock:
        backends = list(_built.values())
        _built.clear()
    for backend in backends:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
