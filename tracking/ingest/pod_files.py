"""`GET /pod-files/<signed token>/`: a proof-of-delivery file, for whoever holds a fresh link.

Links are minted only in API answers to actors allowed to read the POD and expire after
`POD_URL_TTL_S` seconds, so the signature is the authorization (like a pre-signed S3 URL): it
names the organization and the file, and cannot be altered.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, JsonResponse
from django.views.decorators.http import require_GET

from control_tower.errors import error_body
from tracking.services.proof_of_delivery import pod_file_for_token


@require_GET
def pod_file(request, token: str):
    pod_file = pod_file_for_token(token)
    if pod_file is None:
        return JsonResponse(
            error_body(
                "link_expired",
                "This link has expired or is not valid; "
                "fetch the proof of delivery again for a fresh one.",
            ),
            status=403,
        )
    try:
        handle = default_storage.open(pod_file.storage_name, "rb")
    except FileNotFoundError:
        return JsonResponse(
            error_body("not_found", "The file is no longer in storage."),
            status=404,
        )
    response = FileResponse(handle, content_type=pod_file.content_type)
    response["Content-Length"] = str(pod_file.size_bytes)
    response["Cache-Control"] = "private, max-age=60"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = "inline"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
