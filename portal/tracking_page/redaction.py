"""Keep tracking tokens out of the logs: a token is the recipient's key to their address and
their parcel, so access logs and Django's request warnings name it by its hash only.

`/t/<token>` (and the socket `/ws/v1/track/<token>/`) becomes `/t/~<first 16 hex of
sha256(token)>`: the same hash prefix as `TrackingLink.token_hash`, so an operator can still
find the link a log line is about. Installed on the loggers that print request paths
(uvicorn's access and error logs, django.request, django.server, the CSRF warnings) and the
root logger's handlers by PortalConfig.ready().
"""

from __future__ import annotations

import hashlib
import logging
import re

TOKEN_IN_PATH = re.compile(r"(/(?:t|track)/)([A-Za-z0-9_-]{16,})")
PATH_LOGGERS = (
    "uvicorn.access",
    "uvicorn.error",
    "django.request",
    "django.server",
    "django.security.csrf",
    "django.security.DisallowedHost",
)


def redact(text: str) -> str:
    def replace(match: re.Match) -> str:
        digest = hashlib.sha256(match.group(2).encode()).hexdigest()[:16]
        return f"{match.group(1)}~{digest}"

    return TOKEN_IN_PATH.sub(replace, text)


class RedactTrackingTokens(logging.Filter):
    """Rewrites the message and its string arguments in place (uvicorn's access formatter
    reads the arguments by position, so they keep their number and order)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            record.request = None  # django.request attaches the request: it holds the path
        return True


def install() -> None:
    """On the loggers known to print paths (a logger's filter sees only its own records), and
    on the root logger's handlers (they see every record that propagates, whoever logged it)."""
    redactor = RedactTrackingTokens()
    targets = [logging.getLogger(name) for name in PATH_LOGGERS]
    targets += logging.getLogger().handlers
    for target in targets:
        if not any(isinstance(f, RedactTrackingTokens) for f in target.filters):
            target.addFilter(redactor)
