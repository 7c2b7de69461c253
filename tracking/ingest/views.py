"""Protocol endpoints for devices that speak someone else's language, outside the REST API:

- `/ingest/osmand/<token>/`: OsmAnd query/form (GET or POST) and Traccar Client 9+ JSON (POST
  `application/json`, one object or an array). 200 with an empty body; unknown token 404.
- `/ingest/owntracks/`: OwnTracks HTTP mode, HTTP Basic auth whose password (or user name) is
  the device token. 200 with `[]`; bad credentials 401.

Phones retry anything but a 2xx forever, so a duplicate is a 200; a malformed fix is a 400 whose
JSON body names the field (the phone will keep retrying it, but nothing half is stored and the
operator can see why in the device's log).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging

from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from control_tower.tenancy.scope import organization_scope
from tracking.ingest.auth import device_for_token
from tracking.ingest.fixes import FixError
from tracking.ingest.pings import pings_ingest
from tracking.ingest.protocols import parse_osmand, parse_owntracks, parse_traccar_json
from tracking.models import PingSource

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def _error(status: int, code: str, detail: str, fields: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, "fields": fields or {}}, status=status)


def _fix_error(exc: FixError) -> JsonResponse:
    return _error(400, "validation_error", str(exc), {exc.field: [exc.message]})


def _json_body(request):
    if len(request.body) > MAX_BODY_BYTES:
        raise FixError("body", "The body is larger than 1 MB.")
    try:
        return json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise FixError("body", f"Not valid JSON: {exc}.") from None


@csrf_exempt
@require_http_methods(["GET", "POST"])
def osmand(request, token: str):
    device = device_for_token(token)
    if device is None:
        return _error(404, "not_found", "Unknown device.")
    now = timezone.now()
    try:
        if request.method == "POST" and request.content_type == "application/json":
            fixes = parse_traccar_json(_json_body(request))
            source = PingSource.TRACCAR_JSON
        else:
            params = request.GET if request.GET else request.POST
            fixes = [parse_osmand({k: v for k, v in params.items()}, now=now)]
            source = PingSource.OSMAND
    except FixError as exc:
        return _fix_error(exc)
    with organization_scope(device.organization):
        pings_ingest(device=device, fixes=fixes, source=source, received_at=now)
    return HttpResponse(status=200)


def _basic_credentials(request) -> list[str]:
    header = request.headers.get("Authorization", "")
    keyword, _, encoded = header.partition(" ")
    if keyword.lower() != "basic":
        return []
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return []
    return [password, user]


@csrf_exempt
@require_http_methods(["POST"])
def owntracks(request):
    device = next(filter(None, map(device_for_token, _basic_credentials(request))), None)
    if device is None:
        response = _error(401, "not_authenticated", "Unknown or revoked device token.")
        response["WWW-Authenticate"] = 'Basic realm="control tower"'
        return response
    now = timezone.now()
    try:
        fixes = parse_owntracks(_json_body(request))
    except FixError as exc:
        return _fix_error(exc)
    if fixes:
        with organization_scope(device.organization):
            pings_ingest(device=device, fixes=fixes, source=PingSource.OWNTRACKS, received_at=now)
    return JsonResponse([], safe=False)
