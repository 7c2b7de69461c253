"""Response headers of the tracking pages: strict Content-Security-Policy, noindex, no referrer,
no caching. Set here for these pages only (the console and the admin keep their own).

The CSP allows scripts and styles from this site only, plus one `<style>` block carrying the
organization's colours through a per-response nonce; images from this site, `data:` (Leaflet)
and the map tile server; connections to this site (the live socket and the JSON poll).
`Referrer-Policy: same-origin` keeps the token in the page's URL from reaching the tile server
(or any other site); not `no-referrer`, which makes Chromium send `Origin: null` on the page's
own form posts, and Django's CSRF check rightly refuses those.
"""

from __future__ import annotations

import secrets

from control_tower.web import tile_origin


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def content_security_policy(*, nonce: str | None, host: str, secure: bool) -> str:
    socket_origin = f"{'wss' if secure else 'ws'}://{host}"
    images = " ".join(filter(None, ["'self'", "data:", tile_origin()]))
    styles = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            f"style-src {styles}",
            f"img-src {images}",
            f"connect-src 'self' {socket_origin}",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def tracking_headers(response, request, *, nonce: str | None = None):
    response["Content-Security-Policy"] = content_security_policy(
        nonce=nonce, host=request.get_host(), secure=request.is_secure()
    )
    response["X-Robots-Tag"] = "noindex, nofollow, noarchive"
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Frame-Options"] = "DENY"
    return response
