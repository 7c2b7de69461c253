"""What the site's public pages share (the customer tracking page, the driver app): the
language a page speaks, and the map tile server its Content-Security-Policy lets images come
from. Neither page uses LocaleMiddleware: each activates its language itself, so the console and
the rest of the site are unaffected.

A page's language: an explicit choice on the page (`?lang=`), then the one the page knows for
its reader (a tracking link's recipient), then the browser's Accept-Language, then the
organization's default; only the languages in settings.LANGUAGES.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.utils.translation.trans_real import parse_accept_lang_header

SUPPORTED = tuple(code for code, _name in settings.LANGUAGES)


def supported(code: str | None) -> str | None:
    if not code:
        return None
    base = code.lower().split("-")[0].split("_")[0]
    return base if base in SUPPORTED else None


def pick_language(request, *, link_language: str = "", default: str) -> str:
    chosen = supported(request.GET.get("lang"))
    if chosen:
        return chosen
    chosen = supported(link_language)
    if chosen:
        return chosen
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        chosen = supported(code)
        if chosen:
            return chosen
    return supported(default) or SUPPORTED[0]


def tile_origin() -> str:
    """The tile server's origin for img-src (`{s}` subdomains become a wildcard)."""
    parts = urlsplit(settings.TRACKING_TILE_URL or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp with the policy of settings.CONTENT_SECURITY_POLICY, plus the map tile
    server in img-src (a setting of its own, so the rule lives here once)."""

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only=report_only)
        origin = tile_origin()
        if origin and not report_only:
            parts.update = {**(parts.update or {}), "img-src": [origin]}
        return parts
