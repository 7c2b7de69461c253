"""The tenant-safe API base: the safe path is the only easy one.

Every API view resolves an `Actor`, puts its organization in scope for the whole request, and
builds its queryset from the scoped default manager. Subclasses may not override `get_queryset`
(they add `select_related` etc. in `optimize_queryset`), so forgetting the tenant filter is not
possible by construction.
"""

from __future__ import annotations

import re

from django.db.models import QuerySet
from rest_framework import exceptions, mixins, viewsets
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.views import APIView

from control_tower.api.parsers import StrictJSONParser
from control_tower.errors import DomainError
from control_tower.tenancy.actors import Actor, actor_for_user
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.scope import reset_scope, set_scope

# Every tenant model's id (and a viewset's other lookups, e.g. a device id) is an integer that
# fits PostgreSQL's bigint.
_INTEGER_ID = re.compile(r"[0-9]{1,18}", re.ASCII)


class TenantAPIMixin:
    resource: str  # a control_tower.tenancy.roles.Resource
    actor: Actor
    # DRF's defaults with its JSON parser replaced: no RecursionError or NaN from a body.
    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]

    def initial(self, request, *args, **kwargs):
        self._scope_token = None
        method = request.method.lower()
        if method not in self.http_method_names or not hasattr(self, method):
            # Before authentication and roles: a method this path never answers is 405 for
            # everyone (GET /api/v1/ingest/pings was a 403 for a device token).
            # (The view's own answer, so a view can say what replaced the method.)
            self.http_method_not_allowed(request, *args, **kwargs)
        super().initial(request, *args, **kwargs)  # authentication happens here
        self.actor = self._resolve_actor(request)
        self._scope_token = set_scope(self.actor.organization)
        self.check_permissions(request)

    def check_permissions(self, request):
        # DRF calls this inside initial() before we know the actor; we call it again after.
        if getattr(self, "actor", None) is None:
            return
        super().check_permissions(request)

    def finalize_response(self, request, response, *args, **kwargs):
        token = getattr(self, "_scope_token", None)
        if token is not None:
            reset_scope(token)
            self._scope_token = None
        return super().finalize_response(request, response, *args, **kwargs)

    def _resolve_actor(self, request) -> Actor:
        if isinstance(request.auth, Actor):
            return request.auth
        user = request.user
        if not user or not user.is_authenticated:
            raise exceptions.NotAuthenticated(
                "Authenticate with an API key (Authorization: Api-Key <key>) or log in."
            )
        try:
            return actor_for_user(
                user,
                organization_slug=request.headers.get("X-Organization")
                or request.session.get("organization_slug"),
            )
        except DomainError:
            raise
        except Exception as exc:  # pragma: no cover - defensive
            raise exceptions.PermissionDenied(str(exc)) from exc

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["actor"] = getattr(self, "actor", None)
        return context


class TenantAPIView(TenantAPIMixin, APIView):
    pass


class TenantViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """A viewset on one tenant model: the organization scope comes from the model's manager,
    the carrier and driver narrowing from `visible_to` (declared per model in
    `tenancy/carrier_scope.py`, never per view)."""

    model: type

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__ or "queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} must not set queryset/get_queryset: override "
                "optimize_queryset() instead, so the tenant scope cannot be bypassed."
            )

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # A path id that is no integer (`/alerts/null/`) names nothing: 404, as a missing id,
        # rather than a ValueError from the query.
        lookup = kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        if lookup is not None and not _INTEGER_ID.fullmatch(str(lookup)):
            raise exceptions.NotFound()

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation, no request
            return self.model.dangerously_unscoped.none()
        return self.optimize_queryset(visible_to(self.actor, self.model))

    def optimize_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset


class TenantModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """CRUD on one tenant model. Creation sets the organization from the scope."""

    def perform_create(self, serializer):
        serializer.save(organization=self.actor.organization)
