"""Unsubscribe links: a signed token naming (organization, channel, address), so the link in
an e-mail works without a login and cannot be forged to opt someone else out. The page and
the one-click POST (RFC 8058) live in notifications/public_views.py."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

_SALT = "notifications.unsubscribe"


def make_token(organization_id: int, channel: str, address: str) -> str:
    return signing.dumps({"o": organization_id, "c": channel, "a": address}, salt=_SALT)


def read_token(token: str) -> tuple[int, str, str] | None:
    """(organization id, channel, address), or None for a token that was not signed here.
    Unsubscribe links do not expire: an old e-mail must still let someone out."""
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        return None
    try:
        return int(data["o"]), str(data["c"]), str(data["a"])
    except (KeyError, TypeError, ValueError):
        return None


def unsubscribe_url(organization_id: int, channel: str, address: str) -> str:
    """The absolute link (PUBLIC_BASE_URL + path; the path alone when that is not set)."""
    path = reverse(
        "notifications:unsubscribe", args=[make_token(organization_id, channel, address)]
    )
    return f"{settings.PUBLIC_BASE_URL}{path}"
