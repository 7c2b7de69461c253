from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from control_tower.api.base import TenantModelViewSet
from control_tower.errors import Conflict
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.roles import Resource
from tracking import selectors, services
from tracking.api.link_views import TrackingLinksMixin
from tracking.api.scan_views import CustodyActionsMixin
from tracking.api.serializers import (
    HubSerializer,
    RoutePlanSerializer,
    RouteSerializer,
    ShipmentBulkCreateSerializer,
    ShipmentBulkResultSerializer,
    ShipmentCreatedSerializer,
    ShipmentEventSerializer,
    ShipmentSerializer,
    ShipmentTransitionSerializer,
    StopEventSerializer,
    StopFailSerializer,
    StopSerializer,
    StopSkipSerializer,
)
from tracking.errors import NotFound
from tracking.ingest.auth import DEVICE_KEY_OR_SESSION
from tracking.models import Hub, Route, Shipment, ShipmentStatus, Stop, StopStatus
from tracking.route_summary import route_summary, stop_fields
from tracking.services.reassign import stop_reassign
from tracking.services.tracking_links import (
    shipment_create_with_link,
    shipments_bulk_create_with_links,
    tracking_url,
)


class HubViewSet(TenantModelViewSet):
    """Hubs, dark stores and depots (shared by all carriers of the organization)."""

    model = Hub
    resource = Resource.HUBS
    serializer_class = HubSerializer
    filterset_fields = ["kind", "is_active"]
    search_fields = ["code", "name", "address"]
    ordering_fields = ["name", "code", "created_at"]


class ShipmentFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=ShipmentStatus.choices)
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    promised_before = filters.IsoDateTimeFilter(field_name="promised_window_end", lookup_expr="lt")
    route = filters.NumberFilter(field_name="stop_shipments__stop__route", distinct=True)

    class Meta:
        model = Shipment
        fields = ["carrier", "hub", "status", "reference", "barcode", "city", "postal_code"]


class ShipmentViewSet(CustodyActionsMixin, TrackingLinksMixin, TenantModelViewSet):
    """Shipments. Status changes only through `transition`, which refuses illegal moves."""

    model = Shipment
    resource = Resource.SHIPMENTS
    serializer_class = ShipmentSerializer
    filterset_class = ShipmentFilter
    search_fields = ["reference", "barcode", "recipient_name", "address_line1", "city"]
    ordering_fields = ["created_at", "status_changed_at", "promised_window_end", "reference"]

    def optimize_queryset(self, queryset):
        return queryset.select_related("rating")

    @extend_schema(responses={201: ShipmentCreatedSerializer})
    def create(self, request, *args, **kwargs):
        """Create a shipment and its first tracking link: `tracking_url` is in this answer
        only (the link's token is stored hashed); re-issue with POST
        /shipments/{id}/tracking-links/."""
        response = super().create(request, *args, **kwargs)
        response.data["tracking_url"] = self._tracking_url
        return response

    def perform_create(self, serializer):
        serializer.instance, raw = shipment_create_with_link(
            actor=self.actor, data=serializer.validated_data
        )
        self._tracking_url = tracking_url(self.actor.organization, raw, request=self.request)

    def perform_update(self, serializer):
        serializer.instance = services.shipment_update(
            shipment=serializer.instance, actor=self.actor, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.shipment_delete(shipment=instance)

    @extend_schema(
        request=ShipmentBulkCreateSerializer, responses={201: ShipmentBulkResultSerializer}
    )
    @action(detail=False, methods=["post"], url_path="bulk")
    def bulk(self, request):
        """Create up to BULK_MAX_ITEMS shipments in one call: all of them or none (errors are
        reported per item index). Each gets a tracking link, whose URL is in this answer only."""
        serializer = ShipmentBulkCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        created, raw_tokens = shipments_bulk_create_with_links(
            actor=self.actor, items=serializer.validated_data["shipments"]
        )
        organization = self.actor.organization
        return Response(
            {
                "created": len(created),
                "shipments": [
                    {
                        "id": s.pk,
                        "reference": s.reference,
                        "tracking_url": tracking_url(
                            organization, raw_tokens[s.pk], request=request
                        ),
                    }
                    for s in created
                ],
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=ShipmentTransitionSerializer, responses=ShipmentSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Change the status (409 `illegal_transition` if the status machine refuses)."""
        shipment = self.get_object()
        body = ShipmentTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = services.shipment_transition(
            shipment=shipment,
            to_status=body.validated_data["status"],
            at=body.validated_data.get("occurred_at"),
            note=body.validated_data.get("note", ""),
            actor=self.actor,
        )
        return Response(self.get_serializer(result.shipment).data)

    @extend_schema(request=None, responses=ShipmentEventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def events(self, request, pk=None):
        """The status history, oldest first."""
        shipment = self.get_object()
        return Response(ShipmentEventSerializer(shipment.events.all(), many=True).data)


class RouteFilter(filters.FilterSet):
    date_from = filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = filters.DateFilter(field_name="date", lookup_expr="lte")
    status = filters.MultipleChoiceFilter(choices=Route._meta.get_field("status").choices)

    class Meta:
        model = Route
        fields = ["date", "hub", "carrier", "driver", "vehicle", "status", "code"]


class RouteViewSet(TenantModelViewSet):
    """Routes of a day. `bulk` stores a whole day's plan; start/complete/cancel move its
    life cycle (and the shipments on it)."""

    model = Route
    resource = Resource.ROUTES
    # A driver's phone (device token) reads its driver's routes and works them (start,
    # complete); everything else stays with people and API keys (control_tower.tenancy).
    authentication_classes = DEVICE_KEY_OR_SESSION
    action_resources = {"start": Resource.ROUTE_PROGRESS, "complete": Resource.ROUTE_PROGRESS}
    serializer_class = RouteSerializer
    filterset_class = RouteFilter
    search_fields = ["code"]
    ordering_fields = ["date", "code", "planned_start", "created_at"]

    def optimize_queryset(self, queryset):
        return selectors.routes_with_progress(queryset)

    def perform_create(self, serializer):
        route = services.route_create(actor=self.actor, data=serializer.validated_data)
        serializer.instance = self._annotated(route)

    def perform_update(self, serializer):
        route = services.route_update(
            route=serializer.instance, actor=self.actor, data=serializer.validated_data
        )
        serializer.instance = self._annotated(route)

    def _annotated(self, route):
        # The answer shows the progress counts, which come from the annotated queryset.
        return self.get_queryset().filter(pk=route.pk).first() or route

    def perform_destroy(self, instance):
        if instance.status != "planned":
            raise Conflict("Only a planned route can be deleted; cancel it instead.")
        instance.delete()

    @extend_schema(request=RoutePlanSerializer, responses={201: RouteSerializer(many=True)})
    @action(detail=False, methods=["post"], url_path="bulk")
    def bulk(self, request):
        """Store a day's plan: routes with their ordered stops and shipments, all or nothing."""
        serializer = RoutePlanSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        routes = services.route_plan_create(actor=self.actor, **serializer.validated_data)
        queryset = self.get_queryset().filter(pk__in=[r.pk for r in routes]).order_by("code")
        return Response(self.get_serializer(queryset, many=True).data, status=201)

    def _life_cycle(self, service):
        body = StopEventSerializer(data=self.request.data or {})
        body.is_valid(raise_exception=True)
        route = service(
            route=self.get_object(), actor=self.actor, at=body.validated_data.get("occurred_at")
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=route.pk)).data)

    @extend_schema(request=StopEventSerializer, responses=RouteSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._life_cycle(services.route_start)

    @extend_schema(request=StopEventSerializer, responses=RouteSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self._life_cycle(services.route_complete)

    @extend_schema(request=StopEventSerializer, responses=RouteSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._life_cycle(services.route_cancel)


class StopFilter(filters.FilterSet):
    date = filters.DateFilter(field_name="route__date")
    status = filters.MultipleChoiceFilter(choices=Stop._meta.get_field("status").choices)

    class Meta:
        model = Stop
        fields = ["route", "status", "kind"]


class ReassignBodySerializer(serializers.Serializer):
    route = serializers.IntegerField(min_value=1)
    position = serializers.IntegerField(min_value=1, required=False, allow_null=True)


class StopViewSet(TenantModelViewSet):
    model = Stop
    resource = Resource.ROUTES
    authentication_classes = DEVICE_KEY_OR_SESSION
    # Moving a stop between routes is the console's write (carrier users may, between their
    # own carrier's routes), not a routes write. Arriving, completing, failing and skipping is
    # progress on the road, which drivers and their phones may report on their own routes.
    action_resources = {
        "reassign": Resource.CONSOLE,
        "arrive": Resource.ROUTE_PROGRESS,
        "complete": Resource.ROUTE_PROGRESS,
        "fail": Resource.ROUTE_PROGRESS,
        "skip": Resource.ROUTE_PROGRESS,
    }
    serializer_class = StopSerializer
    filterset_class = StopFilter
    search_fields = ["address", "shipments__reference", "shipments__barcode"]
    ordering_fields = ["sequence", "planned_arrival", "eta"]

    def optimize_queryset(self, queryset):
        return queryset.select_related("route").prefetch_related("shipments")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        shipments = data.pop("shipments", [])
        serializer.instance = services.stop_create(actor=self.actor, data=data, shipments=shipments)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        shipments = data.pop("shipments", None)
        serializer.instance = services.stop_update(
            stop=serializer.instance, actor=self.actor, data=data, shipments=shipments
        )

    def perform_destroy(self, instance):
        if instance.status != StopStatus.PENDING:
            raise Conflict("Only a pending stop can be deleted; skip it instead.")
        instance.delete()

    def _respond(self, stop):
        return Response(self.get_serializer(self.get_queryset().get(pk=stop.pk)).data)

    @extend_schema(request=StopEventSerializer, responses=StopSerializer)
    @action(detail=True, methods=["post"])
    def arrive(self, request, pk=None):
        body = StopEventSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stop = services.stop_arrive(
            stop=self.get_object(), actor=self.actor, at=body.validated_data.get("occurred_at")
        )
        return self._respond(stop)

    @extend_schema(request=StopEventSerializer, responses=StopSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        body = StopEventSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stop = services.stop_complete(
            stop=self.get_object(), actor=self.actor, at=body.validated_data.get("occurred_at")
        )
        return self._respond(stop)

    @extend_schema(request=StopFailSerializer, responses=StopSerializer)
    @action(detail=True, methods=["post"])
    def fail(self, request, pk=None):
        body = StopFailSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stop = services.stop_fail(
            stop=self.get_object(),
            actor=self.actor,
            reason=body.validated_data["reason"],
            at=body.validated_data.get("occurred_at"),
            note=body.validated_data.get("note", ""),
        )
        return self._respond(stop)

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
    @action(detail=True, methods=["post"], filter_backends=[])
    def reassign(self, request, pk=None):
        """Move a pending stop (and its shipments) to another open route `{"route": id,
        "position": n?}`: the cheapest insertion on the roads unless a position is given."""
        stop = self.get_queryset().filter(pk=pk).first()
        if stop is None:
            raise exceptions.NotFound("No such stop.")
        body = ReassignBodySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = visible_to(self.actor, Route).filter(pk=body.validated_data["route"]).first()
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
                "from_route": route_summary(result.from_route, with_stops=True),
                "to_route": route_summary(result.to_route, with_stops=True),
            }
        )

    @extend_schema(request=StopSkipSerializer, responses=StopSerializer)
    @action(detail=True, methods=["post"])
    def skip(self, request, pk=None):
        body = StopSkipSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stop = services.stop_skip(
            stop=self.get_object(),
            actor=self.actor,
            note=body.validated_data.get("note", ""),
            reason=body.validated_data.get("reason", ""),
        )
        return self._respond(stop)
