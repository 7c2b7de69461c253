"""The driver app's pages (docs/DRIVER_APP.md): the shell at `/driver/`, its service worker at
`/driver/sw.js` and its web app manifest. Everything else the app does goes through the public
API with the phone's device token (driver_app/api.py and the existing ingest endpoints); these
views hold no data and need no session: the page works before sign-in and offline.

The shell speaks the language of `?lang=`, else the browser's (Accept-Language), like the
tracking page. The strings the script writes come from `js_catalog()`, rendered into the page
with `json_script` (the strict CSP forbids inline code; JSON data is not code).
"""

from __future__ import annotations

import hashlib
import json
import os

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET

from control_tower.web import pick_language, tile_origin
from tracking.models import ShipmentStatus

# The scripts of the shell, in load order, and everything else the service worker keeps for
# offline use. ZXing is loaded only when the camera opens, but cached with the rest.
SCRIPTS = (
    "leaflet/leaflet.js",
    "driver/i18n.js",
    "driver/store.js",
    "driver/outbox.js",
    "driver/position.js",
    "driver/routemap.js",
    "driver/scanner.js",
    "driver/capture.js",
    "driver/forms.js",
    "driver/app.js",
)
STYLES = ("leaflet/leaflet.css", "driver/driver.css")
ZXING = "vendor/zxing/zxing-library-0.23.0.min.js"
ICONS = ("driver/icons/icon-192.png", "driver/icons/icon-512.png")
OFFLINE_FILES = (*STYLES, *SCRIPTS, ZXING, *ICONS)

THEME_COLOR = "#0b3d91"
BACKGROUND_COLOR = "#ffffff"


def content_security_policy() -> str:
    """Scripts and styles from this site only; images also from `data:` (Leaflet), `blob:` (the
    photos being taken) and the tile server; the camera stream is a `MediaStream`, not a URL."""
    images = " ".join(filter(None, ["'self'", "data:", "blob:", tile_origin()]))
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {images}",
            "media-src 'self' blob:",
            "connect-src 'self'",
            "worker-src 'self'",
            "manifest-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _headers(response, *, cache: str = "no-cache"):
    response["Content-Security-Policy"] = content_security_policy()
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "same-origin"
    response["Cache-Control"] = cache
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Frame-Options"] = "DENY"
    # The camera and the position are what this page is for; nothing else gets them.
    response["Permissions-Policy"] = "camera=(self), geolocation=(self), microphone=()"
    return response


def offline_version() -> str:
    """A fingerprint of the files the service worker caches: a new one makes a new worker (its
    bytes change), which replaces the old cache. Sizes and modification times are enough."""
    digest = hashlib.sha256()
    for name in OFFLINE_FILES:
        path = finders.find(name)
        if path:
            stat = os.stat(path)
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


# What a scan may leave a parcel as, in words (ShipmentStatus's labels are not translated).
SHIPMENT_STATUS_WORDS = {
    ShipmentStatus.INFO_RECEIVED: gettext_lazy("Info received"),
    ShipmentStatus.AT_HUB: gettext_lazy("At hub"),
    ShipmentStatus.OUT_FOR_DELIVERY: gettext_lazy("Out for delivery"),
    ShipmentStatus.ATTEMPT_FAILED: gettext_lazy("Attempt failed"),
    ShipmentStatus.DELIVERED: gettext_lazy("Delivered"),
    ShipmentStatus.EXCEPTION: gettext_lazy("Exception"),
    ShipmentStatus.RETURNED: gettext_lazy("Returned to sender"),
    ShipmentStatus.CANCELLED: gettext_lazy("Cancelled"),
}


def _plural(singular: str, plural: str, count: str) -> dict:
    """A counted phrase: both forms in the active language and the placeholder that counts;
    static/driver/i18n.js picks the form with the language's plural rules (Intl.PluralRules).
    English and Spanish have two forms, "one" and "other"."""
    return {
        "one": ngettext(singular, plural, 1),
        "other": ngettext(singular, plural, 2),
        "count": count,
    }


def js_catalog() -> dict[str, str | dict]:
    """The script's words, in the active language. `%(name)s` placeholders are filled in by
    static/driver/i18n.js."""
    return {
        **{f"shipment_{value}": str(words) for value, words in SHIPMENT_STATUS_WORDS.items()},
        "online": _("Online"),
        "offline": _("Offline: actions are kept and sent later"),
        "signing_in": _("Signing in…"),
        "signed_out": _("You are signed out."),
        "revoked": _(
            "Your session was revoked or has expired. Sign in again; actions not sent yet "
            "are kept and will be sent after you sign in."
        ),
        "kept": _plural(
            "%(n)s action is kept on this phone.", "%(n)s actions are kept on this phone.", "n"
        ),
        "signin_failed": _("Could not sign in: %(detail)s"),
        "signin_offline": _("No connection. Signing in needs the internet."),
        "choose_organization": _("You drive for several companies: type the company's code."),
        "driver_of": _("%(driver)s · %(carrier)s"),
        "loading": _("Loading today's route…"),
        "no_routes": _("No route for you today."),
        "route_failed": _("Could not load today's route: %(detail)s"),
        "route_heading": _("Route %(code)s"),
        "route_status_planned": _("Planned"),
        "route_status_in_progress": _("In progress"),
        "route_status_completed": _("Completed"),
        "from_cache": _("Saved copy from %(time)s (no connection)."),
        "stop": _("Stop %(n)s"),
        "next_stop": _("Next stop"),
        "status_pending": _("Pending"),
        "status_arrived": _("Arrived"),
        "status_completed": _("Completed"),
        "status_failed": _("Failed attempt"),
        "status_skipped": _("Skipped"),
        "status_cancelled": _("Cancelled"),
        "waiting_suffix": _("%(status)s (waiting to send)"),
        "window": _("Window %(start)s–%(end)s"),
        "eta": _("Arrival %(start)s–%(end)s"),
        "parcel_line": _plural(
            "%(reference)s · %(barcode)s · %(count)s parcel · %(recipient)s",
            "%(reference)s · %(barcode)s · %(count)s parcels · %(recipient)s",
            "count",
        ),
        "pin_needed": _("PIN needed"),
        "instructions": _("Instructions: %(text)s"),
        "failure_reason": _("Reason: %(text)s"),
        "navigate": _("Navigate"),
        "google_maps": _("Google Maps"),
        "start_route": _("Start route"),
        "arrived": _("Arrived"),
        "deliver": _("Deliver"),
        "complete_no_proof": _("Delivered, no proof"),
        "fail": _("Failed attempt"),
        "skip": _("Skip"),
        "queue_waiting": _plural("%(n)s waiting to send", "%(n)s waiting to send", "n"),
        "queue_empty": _("All sent"),
        "queue_attention": _plural("%(n)s needs attention", "%(n)s need attention", "n"),
        "positions_waiting": _plural(
            "%(n)s position waiting to send", "%(n)s positions waiting to send", "n"
        ),
        "item_waiting": _("waiting"),
        "item_sending": _("sending…"),
        "item_retrying": _("will retry: %(error)s"),
        "item_rejected": _("refused: %(error)s"),
        "dismiss": _("Dismiss"),
        "network_error": _("no connection"),
        "other_driver": _("made by another driver on this phone; not sent"),
        "kind_start_route": _("Start route %(code)s"),
        "kind_arrive": _("Arrived at stop %(n)s"),
        "kind_complete": _("Completed stop %(n)s"),
        "kind_pod": _("Proof of delivery, stop %(n)s"),
        "kind_fail": _("Failed attempt, stop %(n)s"),
        "kind_fail_pod": _("Failed attempt with photo, stop %(n)s"),
        "kind_skip": _("Skipped stop %(n)s"),
        "kind_scan": _("Scan %(barcode)s"),
        "kind_incident": _("Problem reported"),
        "kind_ping": _("Positions"),
        "queued": _("Saved. It will be sent as soon as possible."),
        "scan_unknown": _("Unknown barcode %(barcode)s: it is not on today's route."),
        "scan_wrong_stop": _(
            "Wrong stop: parcel %(barcode)s belongs to stop %(belongs)s, not to the open stop "
            "%(open)s."
        ),
        "scan_send_anyway": _("Send anyway"),
        "scan_cancel": _("Cancel"),
        "scan_waiting": _("%(barcode)s: waiting to send"),
        "result_applied": _("%(barcode)s: done, the parcel is now “%(status)s”."),
        "result_unchanged": _("%(barcode)s: already recorded, nothing changed."),
        "result_recorded": _("%(barcode)s: recorded."),
        "result_illegal": _("%(barcode)s: refused: %(detail)s"),
        "result_unknown_barcode": _("%(barcode)s: unknown barcode, nothing was recorded."),
        "camera_on": _("Point the camera at the barcode."),
        "camera_failed": _("The camera could not start: %(detail)s. Type the barcode instead."),
        "start_camera": _("Start camera"),
        "stop_camera": _("Stop camera"),
        "photo_required": _("Take at least one photo."),
        "signature_required": _("The recipient must sign."),
        "pin_required": _("Type the PIN the recipient gives you."),
        "photo_added": _plural("%(n)s photo ready", "%(n)s photos ready", "n"),
        "photo_failed": _("This photo could not be read."),
        "reason_required": _("Choose a reason."),
        "confirm_signout": _("Sign out? %(n)s actions not sent yet stay on this phone."),
    }


def _config(request, language: str) -> dict:
    return {
        "language": language,
        "api": {
            "session": "/api/v1/driver/session/",
            "today": "/api/v1/driver/today/",
            "pings": reverse("api:ingest-pings"),
            "scans": reverse("api:ingest-scans"),
            "pod": reverse("api:ingest-pod"),
            "incidents": reverse("api:incidents"),
            "routes": "/api/v1/routes/",
            "stops": "/api/v1/stops/",
        },
        "serviceWorker": reverse("driver-sw"),
        "scope": reverse("driver-app"),
        "zxing": static(ZXING),
        "tileUrl": settings.TRACKING_TILE_URL,
    }


@require_GET
def driver_shell(request):
    language = pick_language(request, default=settings.LANGUAGE_CODE)
    with translation.override(language):
        context = {
            "language": language,
            "other_language": "en" if language == "es" else "es",
            "config": _config(request, language),
            "catalog": js_catalog(),
            "styles": STYLES,
            "scripts": SCRIPTS,
            "theme_color": THEME_COLOR,
        }
        response = render(request, "driver/app.html", context)
    return _headers(response)


@require_GET
def service_worker(request):
    """The worker's own URL decides its largest scope; `Service-Worker-Allowed` states it, and
    `no-cache` makes the browser check for a new version on every visit."""
    body = render(
        request,
        "driver/sw.js",
        {
            "version": offline_version(),
            "shell": json.dumps(reverse("driver-app")),
            "files": json.dumps([static(name) for name in OFFLINE_FILES]),
            "today": json.dumps("/api/v1/driver/today/"),
        },
    ).content
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = reverse("driver-app")
    return _headers(response)


@require_GET
def manifest(request):
    language = pick_language(request, default=settings.LANGUAGE_CODE)
    with translation.override(language):
        body = {
            "name": _("Control Tower Driver"),
            "short_name": _("Driver"),
            "description": _("Today's route, scans and proof of delivery."),
            "lang": language,
            "start_url": reverse("driver-app"),
            "scope": reverse("driver-app"),
            "display": "standalone",
            "orientation": "portrait",
            "background_color": BACKGROUND_COLOR,
            "theme_color": THEME_COLOR,
            "icons": [
                {
                    "src": static(name),
                    "sizes": f"{size}x{size}",
                    "type": "image/png",
                    "purpose": "any maskable",
                }
                for name, size in zip(ICONS, (192, 512), strict=True)
            ],
        }
    response = JsonResponse(body, content_type="application/manifest+json")
    return _headers(response, cache="no-cache")
