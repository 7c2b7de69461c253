"""Which language a tracking page speaks: an explicit choice on the page (`?lang=`), then the
link's (the recipient's), then the browser's Accept-Language, then the organization's default.
Only the languages in settings.LANGUAGES; the console and the rest of the site are unaffected
(no LocaleMiddleware: the page activates its language itself)."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation.trans_real import parse_accept_lang_header

SUPPORTED = tuple(code for code, _name in settings.LANGUAGES)


def supported(code: str | None) -> str | None:
    if not code:
        return None
    base = code.lower().split("-")[0].split("_")[0]
    return base if base in SUPPORTED else None


def pick_language(request, *, link_language: str, default: str) -> str:
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
