"""One exception handler for the whole API: every error is
`{"error": <stable code>, "detail": <human message>, "fields": {<field>: [messages]}}`."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from control_tower.api.bulk import index_list_errors
from control_tower.errors import DomainError, TooManyAttempts, error_body
from control_tower.unavailable import database_unavailable, retry_after_s, unavailable_body

logger = logging.getLogger(__name__)

_CODES = {
    exceptions.ValidationError: ("validation_error", "The request has invalid fields."),
    exceptions.ParseError: ("parse_error", None),
    exceptions.NotAuthenticated: ("not_authenticated", None),
    exceptions.AuthenticationFailed: ("authentication_failed", None),
    exceptions.PermissionDenied: ("permission_denied", None),
    exceptions.NotFound: ("not_found", "Not found."),
    exceptions.MethodNotAllowed: ("method_not_allowed", None),
    exceptions.NotAcceptable: ("not_acceptable", None),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", None),
    exceptions.Throttled: ("throttled", None),
}


def _as_fields(detail) -> dict:
    if isinstance(detail, dict):
        return index_list_errors(detail)
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {"non_field_errors": [detail]}


def exception_handler(exc, context):
    if database_unavailable(exc):
        return unavailable_response()
    if isinstance(exc, DomainError):
        response = Response(error_body(exc.code, exc.detail, exc.fields), status=exc.status_code)
        if isinstance(exc, TooManyAttempts):
            response["Retry-After"] = str(exc.retry_after_s)
        return response
    if isinstance(exc, DjangoValidationError):
        fields = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        return Response(
            error_body("validation_error", "The request has invalid fields.", fields),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, ProtectedError | RestrictedError):
        return Response(
            error_body("in_use", "Other records still refer to this one; deactivate it instead."),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, IntegrityError):
        # Serializers validate uniqueness first; this is the race between two writers.
        logger.info("integrity error mapped to 409: %s", exc)
        return Response(
            error_body("conflict", "This conflicts with existing data (a duplicate?)."),
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    code, default_detail = next(
        (value for cls, value in _CODES.items() if isinstance(exc, cls)),
        ("error", None),
    )
    if isinstance(exc, exceptions.ValidationError):
        body = error_body(code, default_detail, _as_fields(exc.detail))
    elif isinstance(exc, exceptions.ParseError):  # the body as a whole could not be read
        body = error_body(code, str(exc.detail), {"body": [str(exc.detail)]})
    else:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        body = error_body(code, default_detail or detail)
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            body["detail"] = detail
    response.data = body
    return response


def unavailable_response() -> JsonResponse:
    """503 + Retry-After while PostgreSQL is out of reach (control_tower/unavailable.py)."""
    response = JsonResponse(unavailable_body(), status=503)
    response["Retry-After"] = str(retry_after_s())
    return response


def json_404(request, exception=None):
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def json_500(request):
    return JsonResponse(error_body("server_error", "Something went wrong on our side."), status=500)
