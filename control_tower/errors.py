"""Domain errors. The API exception handler turns each into a clear 4xx JSON body:
`{"error": <code>, "detail": <message>, "fields": {...}}`."""

from __future__ import annotations


def error_body(code: str, detail: str, fields: dict | None = None) -> dict:
    """The one 4xx/5xx JSON body of every HTTP surface (DRF handler, plain Django views and the
    ASGI ingest path), so clients parse a single shape."""
    return {"error": code, "detail": detail, "fields": fields or {}}


class DomainError(Exception):
    """Base for errors a caller can fix; `code` is stable, `detail` is for humans."""

    code = "domain_error"
    status_code = 400

    def __init__(self, detail: str, *, fields: dict | None = None, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or {}
        if code:
            self.code = code


class TenantScopeMissing(RuntimeError):
    """A query on tenant data ran with no organization in scope. A programming error: never
    caught to fall back to "all rows"."""


class TenantMismatch(RuntimeError):
    """An object of one organization was about to be written in another's scope."""


class InvitationInvalid(DomainError):
    """An invitation link that is unknown, expired, revoked or used: one answer for all, so
    the link tells nothing about which."""

    code = "invitation_invalid"
    status_code = 410


class IllegalTransition(DomainError):
    code = "illegal_transition"
    status_code = 409


class Conflict(DomainError):
    """The request is valid but clashes with the current state (409)."""

    code = "conflict"
    status_code = 409


class NotPermitted(DomainError):
    code = "permission_denied"
    status_code = 403


class TooManyAttempts(DomainError):
    """429; the HTTP answer carries `Retry-After: retry_after_s` (every surface that maps this
    error: the API handler, the tracking page)."""

    code = "too_many_attempts"
    status_code = 429
    DEFAULT_RETRY_AFTER_S = 60

    def __init__(self, detail: str, *, retry_after_s: int | None = None, **kwargs):
        super().__init__(detail, **kwargs)
        self.retry_after_s = max(1, int(retry_after_s or self.DEFAULT_RETRY_AFTER_S))
