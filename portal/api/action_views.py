"""Console API, the dispatcher's actions and lookups (docs/API.md "Dispatcher console"):
stop details, search, offline streets, reassign a stop. Thin: parse, check access, call one
selector or service, answer.

Who: owner, admin, dispatcher and ops manager read; carrier users read their carrier's rows;
drivers and device tokens are refused (403). Reassigning: owner, admin, dispatcher, and carrier
users between their own carrier's routes. Rows of another organization (or, for a carrier
user, another carrier) are 404, indistinguishable from missing ones.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, permissions, serializers
from rest_framework.response import Response

from control_tower.api.base import TenantAPIView
from control_tower.errors import DomainError
from control_tower.tenancy.roles import READ, WRITE, Resource, Role
from portal.route_summary import route_summary
from portal.stop_details import (
    SEARCH_MIN_CHARS,
    shipments_search,
    stop_details,
    stop_fields,
)
from portal.streets import StreetsQueryError, parse_streets_query, streets_geojson
from tracking.models import Route, Shipment, Stop
from tracking.services.reassign import NotFound, stop_reassign

CONSOLE_READERS = frozenset(
    {Role.OWNER, Role.ADMIN, Role.DISPATCHER, Role.OPS_MANAGER, Role.CARRIER_USER}
)
REASSIGNERS = frozenset({Role.OWNER, Role.ADMIN, Role.DISPATCHER, Role.CARRIER_USER})
STREETS_MAX_AGE_S = 3600  # the network changes only when someone re-imports it


class ConsolePermission(permissions.BasePermission):
    """People by role (the table above); API keys by scope on the view's resource; devices
    never."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        actor = getattr(view, "actor", None)
        if actor is None or actor.device is not None:
            return False
        write = request.method not in permissions.SAFE_METHODS
        if actor.api_key is not None:
            return actor.can(view.resource, WRITE if write else READ)
        return actor.role in (REASSIGNERS if write else CONSOLE_READERS)


class ConsoleView(TenantAPIView):
    permission_classes = [ConsolePermission]

    def visible_stops(self) -> QuerySet[Stop]:
        stops = Stop.objects.all()
        if self.actor.carrier_id is not None:
            stops = stops.filter(route__carrier_id=self.actor.carrier_id)
        return stops

    def visible_routes(self) -> QuerySet[Route]:
        routes = Route.objects.all()
        if self.actor.carrier_id is not None:
            routes = routes.filter(carrier_id=self.actor.carrier_id)
        return routes


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(message, fields={field: [message]}, code="validation_error")


class StopDetailsView(ConsoleView):
    """`GET /api/v1/console/stops/<id>/`: one stop for the side panel."""

    resource = Resource.ROUTES

    @extend_schema(operation_id="console_stop_details", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        stop = (
            self.visible_stops()
            .select_related("route__carrier", "route__driver", "route__vehicle")
            .filter(pk=pk)
            .first()
        )
        if stop is None:
            raise exceptions.NotFound("No such stop.")
        return Response(stop_details(stop, request))


class SearchView(ConsoleView):
    """`GET /api/v1/console/search/?q=`: shipments by reference or barcode."""

    resource = Resource.SHIPMENTS

    @extend_schema(
        operation_id="console_search",
        parameters=[OpenApiParameter("q", str, required=True)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        text = (request.query_params.get("q") or "").strip()
        if len(text) < SEARCH_MIN_CHARS:
            raise _invalid(
                "q", f"Type at least {SEARCH_MIN_CHARS} characters of a reference or barcode."
            )
        if len(text) > 64:
            raise _invalid("q", "References and barcodes are at most 64 characters.")
        shipments = Shipment.objects.all()
        if self.actor.carrier_id is not None:
            shipments = shipments.filter(carrier_id=self.actor.carrier_id)
        results = shipments_search(shipments=shipments, text=text, carrier_id=self.actor.carrier_id)
        return Response({"results": results})


class StreetsView(ConsoleView):
    """`GET /api/v1/console/streets/?bbox=&zoom=`: road lines for the offline base map."""

    resource = Resource.HUBS  # shared, read by every console user; not tenant data

    @extend_schema(
        operation_id="console_streets",
        parameters=[
            OpenApiParameter("bbox", str, required=True, description="minlon,minlat,maxlon,maxlat"),
            OpenApiParameter("zoom", int, required=True),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        try:
            query = parse_streets_query(
                request.query_params.get("bbox"), request.query_params.get("zoom")
            )
        except StreetsQueryError as exc:
            raise _invalid(exc.field, str(exc)) from None
        response = Response(streets_geojson(query))
        response["Cache-Control"] = f"public, max-age={STREETS_MAX_AGE_S}"
        return response


class ReassignBodySerializer(serializers.Serializer):
    route = serializers.IntegerField(min_value=1)
    position = serializers.IntegerField(min_value=1, required=False, allow_null=True)


class ReassignView(ConsoleView):
    """`POST /api/v1/stops/<id>/reassign/` `{"route": id, "position": n?}`."""

    resource = Resource.ROUTES

    @extend_schema(
        operation_id="stop_reassign",
        request=ReassignBodySerializer,
        responses={
            200: inline_serializer(
                "StopReassigned",
                {
                    "stop": serializers.DictField(),
                    "from_route": serializers.DictField(),
                    "to_route": serializers.DictField(),
                },
            )
        },
    )
    def post(self, request, pk: int):
        stop = self.visible_stops().filter(pk=pk).first()
        if stop is None:
            raise exceptions.NotFound("No such stop.")
        body = ReassignBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = self.visible_routes().filter(pk=body.validated_data["route"]).first()
        if target is None:
            raise NotFound("No such route.", fields={"route": ["No such route."]})
        result = stop_reassign(
            actor=self.actor,
            stop=stop,
            to_route=target,
            position=body.validated_data.get("position"),
        )
        moved = Stop.objects.get(pk=result.stop.pk)
        return Response(
            {
                "stop": stop_fields(moved, list(moved.shipments.order_by("pk"))),
                "position": result.position,
                "insertion_cost_s": result.insertion_cost_s,
                "from_route": route_summary(result.from_route),
                "to_route": route_summary(result.to_route),
            }
        )
