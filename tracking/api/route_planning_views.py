"""`POST /api/v1/routes/plan/`: plan a hub's day with the VRP solver."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from control_tower.api.base import TenantAPIView
from control_tower.api.fields import SaneDateTimeField
from control_tower.tenancy.roles import Resource
from tracking.api.serializers import RouteSerializer
from tracking.services.route_planning import plan_routes_from_ids


class VehicleShiftSerializer(serializers.Serializer):
    vehicle = serializers.IntegerField()
    driver = serializers.IntegerField()
    shift_start = SaneDateTimeField()
    shift_end = SaneDateTimeField()


class PlanRequestSerializer(serializers.Serializer):
    hub = serializers.IntegerField()
    date = serializers.DateField()
    vehicles = VehicleShiftSerializer(many=True, allow_empty=False)
    shipments = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        allow_empty=False,
        help_text="Default: the hub's shipments waiting for a route.",
    )
    service_s = serializers.IntegerField(default=180, min_value=0, max_value=3600)
    dry_run = serializers.BooleanField(default=False)


PLAN_RESPONSE = inline_serializer(
    "RoutePlanResult",
    {
        "routes": RouteSerializer(many=True),
        "unassigned": serializers.ListField(child=serializers.DictField()),
        "totals": serializers.DictField(),
    },
)


class RoutePlanView(TenantAPIView):
    resource = Resource.ROUTES

    @extend_schema(
        operation_id="routes_plan",
        request=PlanRequestSerializer,
        responses={201: PLAN_RESPONSE, 200: PLAN_RESPONSE},
        description="Build the day's routes for a hub with VROOM on the road network's travel "
        "times: capacities, promised windows and shifts respected; what cannot fit is listed "
        "in `unassigned` with a reason. `dry_run` returns the plan without storing it.",
    )
    def post(self, request):
        body = PlanRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = plan_routes_from_ids(
            actor=self.actor,
            hub_id=data["hub"],
            date=data["date"],
            vehicles=data["vehicles"],
            shipment_ids=data.get("shipments"),
            service_s=data["service_s"],
            dry_run=data["dry_run"],
        )
        if data["dry_run"]:
            routes = [_spec_summary(spec) for spec in result.routes]
        else:
            routes = RouteSerializer(result.routes, many=True, context={"request": request}).data
        return Response(
            {"routes": routes, "unassigned": result.unassigned, "totals": result.totals},
            status=status.HTTP_200_OK if data["dry_run"] else status.HTTP_201_CREATED,
        )


def _spec_summary(spec: dict) -> dict:
    return {
        "code": spec["code"],
        "vehicle": spec["vehicle"].pk,
        "driver": spec["driver"].pk,
        "planned_start": spec["planned_start"],
        "planned_end": spec["planned_end"],
        "planned_distance_m": spec["planned_distance_m"],
        "stops": [
            {
                "sequence": n,
                "planned_arrival": stop["planned_arrival"],
                "shipments": [s.pk for s in stop["shipments"]],
            }
            for n, stop in enumerate(spec["stops"], start=1)
        ],
    }
