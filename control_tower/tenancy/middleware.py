"""Puts the logged-in person's organization in scope for pages and the admin."""

from __future__ import annotations

from django.urls import get_resolver

from control_tower.errors import DomainError
from control_tower.tenancy.actors import actor_for_user
from control_tower.tenancy.scope import ALL_ORGANIZATIONS, reset_scope, set_scope

SESSION_KEY = "organization_slug"


class OrganizationMiddleware:
    """Sets `request.actor` (or None) and the organization scope for the request.

    A person with several organizations picks one (stored in the session); a superuser with no
    membership works across all organizations (admin only). API requests re-resolve in DRF,
    because an API key may stand in for the session there.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        # Import every view module now, at start-up, outside any organization scope. Querysets
        # declared at class level (filter and serializer fields) must be built "pending"; if
        # the URLconf were first imported inside a request, they would be built with that
        # request's organization (or a superuser's all-organizations scope) and keep it.
        get_resolver().url_patterns  # noqa: B018 - evaluated for its import side effect

    def __call__(self, request):
        request.actor = None
        scope = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            try:
                request.actor = actor_for_user(
                    user, organization_slug=request.session.get(SESSION_KEY)
                )
                scope = request.actor.organization
            except DomainError:
                if user.is_superuser:
                    scope = ALL_ORGANIZATIONS
        token = set_scope(scope)
        try:
            return self.get_response(request)
        finally:
            reset_scope(token)
