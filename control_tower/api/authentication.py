"""API authentication: organization API keys, or the browser session of a member."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from control_tower.auth_throttle import auth_failed, auth_retry_after
from control_tower.caches import LocalCache
from control_tower.ratelimit import client_ip
from control_tower.tasks import api_key_record_use
from control_tower.tenancy.actors import actor_for_api_key
from control_tower.tenancy.enqueue import enqueue_on_commit

LAST_USED_RESOLUTION = timedelta(seconds=60)
_recently_recorded = LocalCache(maxsize=10_000, ttl_s=LAST_USED_RESOLUTION.total_seconds())


class MachineUser:
    """Stands in for `request.user` when a machine (an API key, a device) calls: authenticated,
    never staff, never a person."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None
    email = ""


class ApiKeyUser(MachineUser):
    def __init__(self, api_key):
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


def checked_credential(request, raw: str, resolve):
    """`resolve(raw)` (an actor or None) behind the failed-credential limit of the client IP
    (control_tower/auth_throttle.py): raises Throttled (429, Retry-After) while it is over."""
    ip = client_ip(request)
    wait = auth_retry_after(ip)
    if wait is not None:
        raise exceptions.Throttled(wait=wait, detail="Too many failed credentials from here.")
    actor = resolve(raw)
    if actor is None:
        auth_failed(ip)
    return actor


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Api-Key <key>` (or `X-Api-Key: <key>`). The key decides the organization."""

    keyword = "Api-Key"

    def authenticate(self, request):
        raw = request.headers.get("X-Api-Key")
        header = request.headers.get("Authorization", "")
        if raw is None and header:
            keyword, _, value = header.partition(" ")
            if keyword.lower() not in {self.keyword.lower(), "bearer"}:
                return None
            raw = value.strip()
        if raw is None:
            return None
        actor = checked_credential(request, raw, actor_for_api_key)
        if actor is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
        self._record_use(actor.api_key)
        return ApiKeyUser(actor.api_key), actor

    @staticmethod
    def _record_use(api_key) -> None:
        # Off the request path and at most once a minute per key: a hot key must not turn
        # every request into a write.
        now = timezone.now()
        if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
            return
        # And once a minute per process: while the queue is behind, the row still shows the old
        # time, and every request would queue one more write (seen in the soak: hundreds).
        if _recently_recorded.get(api_key.pk) is not None:
            return
        _recently_recorded.set(api_key.pk, True)
        enqueue_on_commit(
            api_key_record_use,
            organization_id=api_key.organization_id,
            api_key_id=api_key.pk,
            at=now.isoformat(),
        )

    def authenticate_header(self, request):
        return self.keyword


class OrganizationSessionAuthentication(authentication.SessionAuthentication):
    """The Django session of a logged-in person (with CSRF on unsafe methods). The organization
    is resolved from the membership by the view, see `TenantAPIView.initial`."""


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "control_tower.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: create keys in the admin or at /api/v1/api-keys/.",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "control_tower.api.authentication.OrganizationSessionAuthentication"
    name = "SessionAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
