"""The console's read endpoints (the contract: docs/REALTIME.md): the snapshot the live map loads
first and one route when it is opened. Thin: access, one selector, JSON (gzipped for clients
that accept it: the snapshot of a 2,000-vehicle fleet is ~1 MB raw, ~60 KB gzipped)."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.gzip import gzip_page
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from control_tower.api.base import TenantAPIView
from control_tower.tenancy.roles import Resource
from portal import selectors


class ConsoleReadView(TenantAPIView):
    """Whoever the grants table lets read the console (dispatchers, admins, ops managers,
    carrier users narrowed to their carrier; not drivers or devices)."""

    resource = Resource.CONSOLE


@method_decorator(gzip_page, name="dispatch")
class ConsoleSnapshotView(ConsoleReadView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        """Organization, carriers, hubs, active vehicles with their last position, and today's
        routes (plus any still in progress) with progress and lateness; `seq` is the caller's
        event-group sequence read before the queries."""
        # The body is built as JSON text (mostly by PostgreSQL): no serializer, no renderer.
        body = selectors.console_snapshot_json(actor=self.actor)
        return HttpResponse(body, content_type="application/json")


@method_decorator(gzip_page, name="dispatch")
class ConsoleRouteView(ConsoleReadView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        """One route: its summary, planned path, driven part and stops with their shipments."""
        route = selectors.console_route_or_none(actor=self.actor, route_id=pk)
        if route is None:
            raise exceptions.NotFound("No such route.")
        return Response(selectors.console_route(route=route))
