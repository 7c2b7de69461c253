"""Protocol endpoints for devices that speak someone else's language, outside the REST API:

- `/ingest/osmand/<token>/`: OsmAnd query/form (GET or POST) and Traccar Client 9+ JSON (POST
  `application/json`, one object or an array). 200 with an empty body; unknown token 404.
- `/ingest/owntracks/`: OwnTracks HTTP mode, HTTP Basic auth whose password (or user name) is
  the device token. 200 with `[]`; bad credentials 401.

Under ASGI these paths are answered by tracking/ingest/fast.py before Django (same parsing, same
storage plan, no thread hops); these views serve WSGI deployments and Django's test client.

Phones retry anything but a 2xx forever, so a duplicate is a 200; a malformed fix is a 400 whose
JSON body names the field (the phone will keep retrying it, but nothing half is stored and the
operator can see why in the device's log).
"""

from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from control_tower.errors import error_body
from control_tower.tenancy.scope import organization_scope
from tracking.ingest.auth import OWNTRACKS_CHALLENGE, basic_credentials, device_for_token
from tracking.ingest.fixes import FixError
from tracking.ingest.pings import pings_ingest
from tracking.ingest.protocols import json_body, osmand_request_fixes, parse_owntracks
from tracking.models import PingSource

logger = logging.getLogger(__name__)


def _error(status: int, code: str, detail: str, fields: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, detail, fields), status=status)


def _fix_error(exc: FixError) -> JsonResponse:
    return _error(400, "validation_error", str(exc), {exc.field: [exc.message]})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def osmand(request, token: str):
    device = device_for_token(token)
    if device is None:
        return _error(404, "not_found", "Unknown device.")
    now = timezone.now()
    body = request.body  # first: reading the form afterwards still works, not the reverse
    try:
        source, fixes = osmand_request_fixes(
            method=request.method,
            content_type=request.content_type,
            query=dict(request.GET.items()),
            form=dict(request.POST.items()) if request.method == "POST" else {},
            body=body,
            now=now,
        )
    except FixError as exc:
        return _fix_error(exc)
    with organization_scope(device.organization):
        pings_ingest(device=device, fixes=fixes, source=source, received_at=now)
    return HttpResponse(status=200)


@csrf_exempt
@require_http_methods(["POST"])
def owntracks(request):
    credentials = basic_credentials(request.headers.get("Authorization", ""))
    device = next(filter(None, map(device_for_token, credentials)), None)
    if device is None:
        response = _error(401, "not_authenticated", "Unknown or revoked device token.")
        response["WWW-Authenticate"] = OWNTRACKS_CHALLENGE
        return response
    now = timezone.now()
    try:
        fixes = parse_owntracks(json_body(request.body))
    except FixError as exc:
        return _fix_error(exc)
    if fixes:
        with organization_scope(device.organization):
            pings_ingest(device=device, fixes=fixes, source=PingSource.OWNTRACKS, received_at=now)
    return JsonResponse([], safe=False)
