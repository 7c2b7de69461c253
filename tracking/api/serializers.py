from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from carriers.models import Carrier, Driver, Vehicle
from control_tower.api.bulk import BulkErrors, resolve_ids
from control_tower.api.fields import LineStringField, PointField, SaneDateTimeField
from control_tower.api.serializers import TenantModelSerializer
from control_tower.tenancy.carrier_scope import visible_to
from tracking.api.link_views import DeliveryRatingSerializer
from tracking.models import (
    FailureReason,
    Hub,
    Route,
    Shipment,
    ShipmentEvent,
    ShipmentStatus,
    Stop,
)
from tracking.services.routes import route_plan_problems
from tracking.services.shipments import shipments_batch_problems

# --- hubs --------------------------------------------------------------------------------


class HubSerializer(TenantModelSerializer):
    location = PointField()

    class Meta:
        model = Hub
        fields = [
            "id",
            "code",
            "name",
            "kind",
            "address",
            "region",
            "location",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]
        unique_in_organization = (("code",),)


# --- shipments ---------------------------------------------------------------------------

SHIPMENT_FIELDS = [
    "id",
    "reference",
    "barcode",
    "carrier",
    "hub",
    "status",
    "status_changed_at",
    "delivery_pin",
    "pin_required",
    "recipient_name",
    "recipient_phone",
    "recipient_email",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "country_code",
    "location",
    "delivery_instructions",
    "parcel_count",
    "weight_kg",
    "service_type",
    "promised_window_start",
    "promised_window_end",
    "rating",
    "created_at",
    "updated_at",
]


class ShipmentSerializer(TenantModelSerializer):
    """Parses a shipment; the rules (initial status, unique reference and barcode, window,
    carrier and hub of the organization) are `shipment_create` / `shipment_update`'s."""

    location = PointField(required=False, allow_null=True)
    delivery_pin = serializers.RegexField(
        r"^\d{4,8}$",
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="4–8 digits the recipient gives the driver; the proof of delivery must "
        "match it. Stored hashed; empty clears it.",
    )
    pin_required = serializers.SerializerMethodField()
    rating = DeliveryRatingSerializer(
        read_only=True,
        allow_null=True,
        help_text="The recipient's rating after delivery (null: none yet).",
    )
    status = serializers.ChoiceField(
        choices=ShipmentStatus.choices,
        required=False,
        help_text="On creation only (info_received or at_hub); later use the transition call.",
    )

    class Meta:
        model = Shipment
        fields = SHIPMENT_FIELDS
        read_only_fields = ["id", "status_changed_at", "created_at", "updated_at"]

    def validate_country_code(self, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise serializers.ValidationError("Use a two-letter ISO code, e.g. CL.")
        return value.upper()

    def get_pin_required(self, obj) -> bool:
        return bool(getattr(obj, "delivery_pin_hash", ""))


class ShipmentCreatedSerializer(ShipmentSerializer):
    """The answer to a shipment's creation: the shipment and its first tracking link."""

    tracking_url = serializers.CharField(
        read_only=True,
        help_text="The recipient's tracking link. Shown once: only its hash is stored; "
        "re-issue with POST /shipments/{id}/tracking-links/.",
    )

    class Meta(ShipmentSerializer.Meta):
        fields = [*SHIPMENT_FIELDS, "tracking_url"]


class ShipmentBulkItemSerializer(ShipmentSerializer):
    """One item of a bulk upload: related ids are resolved for the whole batch at once."""

    carrier = serializers.IntegerField(required=False, allow_null=True)
    hub = serializers.IntegerField(required=False, allow_null=True)

    class Meta(ShipmentSerializer.Meta):
        validators = []


class ShipmentBulkCreateSerializer(serializers.Serializer):
    """Parses every item and resolves the batch's ids, and reports all problems at once (the
    service's rules included), keyed by item index."""

    shipments = serializers.ListField(
        child=serializers.DictField(),
        allow_empty=False,
        help_text="Shipment objects, as for POST /shipments/ (carrier and hub as ids).",
    )

    def validate_shipments(self, raw_items):
        if len(raw_items) > settings.BULK_MAX_ITEMS:
            raise serializers.ValidationError(
                f"At most {settings.BULK_MAX_ITEMS} shipments per call; split the batch."
            )
        errors = BulkErrors("shipments")
        items: list[dict | None] = []
        for index, raw in enumerate(raw_items):
            item = ShipmentBulkItemSerializer(data=raw, context=self.context)
            if item.is_valid():
                items.append(dict(item.validated_data))
            else:
                items.append(None)
                for field, messages in item.errors.items():
                    for message in messages:
                        errors.add(index, field, str(message))
        valid = [item for item in items if item is not None]
        positions = [index for index, item in enumerate(items) if item is not None]
        batch_errors = BulkErrors("shipments")
        actor = self.context.get("actor")
        resolve_ids(actor, Carrier, valid, "carrier", batch_errors, required=False)
        resolve_ids(actor, Hub, valid, "hub", batch_errors, required=False)
        # resolve_ids numbered the valid items 0..n; map back to positions in the request.
        for local, fields in batch_errors.errors.items():
            for field, messages in fields.items():
                for message in messages:
                    errors.add(positions[local], field, message)
        # The batch's rules live in the service; asked here too so that one answer lists the
        # parse errors and the broken rules together.
        organization_id = self.context["actor"].organization.pk
        for index, field, message in shipments_batch_problems(organization_id, items).items():
            errors.add(index, field, message)
        errors.raise_if_any(wrap=False)
        return valid


class ShipmentBulkCreatedItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    tracking_url = serializers.CharField(
        help_text="The recipient's tracking link, shown once (only its hash is stored)."
    )


class ShipmentBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    shipments = ShipmentBulkCreatedItemSerializer(many=True)


class ShipmentTransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ShipmentStatus.choices)
    occurred_at = SaneDateTimeField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class ShipmentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ShipmentEvent
        fields = [
            "id",
            "from_status",
            "to_status",
            "occurred_at",
            "recorded_at",
            "source",
            "actor_label",
            "note",
        ]


# --- routes and stops --------------------------------------------------------------------


class RouteSerializer(TenantModelSerializer):
    planned_geometry = LineStringField(required=False, allow_null=True)
    stops_total = serializers.IntegerField(read_only=True)
    stops_done = serializers.IntegerField(read_only=True)

    class Meta:
        model = Route
        fields = [
            "id",
            "date",
            "code",
            "hub",
            "carrier",
            "driver",
            "vehicle",
            "status",
            "planned_start",
            "planned_end",
            "planned_geometry",
            "planned_distance_m",
            "planned_duration_s",
            "started_at",
            "completed_at",
            "stops_total",
            "stops_done",
            "created_at",
        ]
        read_only_fields = ["id", "status", "started_at", "completed_at", "created_at"]
        # The rules (code new on its date, crew of the carrier, window) are `route_create` /
        # `route_update`'s; DRF's own (date, code) validator would not know the organization.
        validators = []


class StopDeliverySerializer(serializers.ModelSerializer):
    """A parcel handed over at a stop, as the driver needs it (drivers do not read the
    shipments API): who, and what the recipient asked for."""

    class Meta:
        model = Shipment
        fields = [
            "id",
            "reference",
            "barcode",
            "recipient_name",
            "parcel_count",
            "delivery_instructions",
        ]
        read_only_fields = fields


class StopSerializer(TenantModelSerializer):
    location = PointField()
    shipments = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Shipment.objects,
        required=False,
        help_text="Ids of the shipments handed over at this stop.",
    )
    deliveries = StopDeliverySerializer(
        source="shipments",
        many=True,
        read_only=True,
        help_text="The shipments handed over here, with the recipient's delivery instructions.",
    )

    class Meta:
        model = Stop
        fields = [
            "id",
            "route",
            "sequence",
            "kind",
            "status",
            "shipments",
            "deliveries",
            "location",
            "address",
            "window_start",
            "window_end",
            "planned_arrival",
            "planned_service_s",
            "eta",
            "eta_earliest",
            "eta_latest",
            "eta_updated_at",
            "actual_arrival",
            "actual_departure",
            "failure_reason",
            "notes",
            "recipient_away_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "recipient_away_at",
            "eta",
            "eta_earliest",
            "eta_latest",
            "eta_updated_at",
            "actual_arrival",
            "actual_departure",
            "failure_reason",
            "updated_at",
        ]
        # The sequence's uniqueness on its route is `stop_create` / `stop_update`'s rule (it
        # names the field); DRF's own validator would not know about the organization.
        validators = []


class StopFailSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=FailureReason.choices)
    occurred_at = SaneDateTimeField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class StopEventSerializer(serializers.Serializer):
    occurred_at = SaneDateTimeField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class StopSkipSerializer(StopEventSerializer):
    reason = serializers.ChoiceField(
        choices=FailureReason.choices,
        required=False,
        allow_blank=True,
        help_text="Why the stop is not visited (the failure reason taxonomy), kept on the stop.",
    )


# --- a day's plan in one call -----------------------------------------------------------


class PlanStopSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(min_value=1, required=False)
    kind = serializers.ChoiceField(choices=Stop._meta.get_field("kind").choices, default="delivery")
    shipment_references = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        help_text="References of the shipments handed over here.",
    )
    location = PointField(required=False, help_text="Defaults to the first shipment's location.")
    address = serializers.CharField(required=False, allow_blank=True, max_length=300)
    window_start = SaneDateTimeField(required=False, allow_null=True)
    window_end = SaneDateTimeField(required=False, allow_null=True)
    planned_arrival = SaneDateTimeField(required=False, allow_null=True)
    planned_service_s = serializers.IntegerField(min_value=0, required=False)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=500)


class PlanRouteSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)
    hub = serializers.IntegerField()
    carrier = serializers.IntegerField()
    driver = serializers.IntegerField(required=False, allow_null=True)
    vehicle = serializers.IntegerField(required=False, allow_null=True)
    planned_start = SaneDateTimeField(required=False, allow_null=True)
    planned_end = SaneDateTimeField(required=False, allow_null=True)
    planned_geometry = LineStringField(required=False, allow_null=True)
    planned_distance_m = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    planned_duration_s = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    stops = PlanStopSerializer(many=True)


class RoutePlanSerializer(serializers.Serializer):
    """A day's plan: routes with ordered stops, each stop naming its shipments by reference.
    Stored whole or not at all."""

    date = serializers.DateField()
    routes = PlanRouteSerializer(many=True, allow_empty=False)

    def validate(self, attrs):
        routes = attrs["routes"]
        if sum(len(r["stops"]) for r in routes) > settings.BULK_MAX_ITEMS:
            raise serializers.ValidationError(
                {"routes": [f"At most {settings.BULK_MAX_ITEMS} stops per plan."]}
            )
        errors = BulkErrors("routes")
        actor = self.context.get("actor")
        resolve_ids(actor, Hub, routes, "hub", errors, required=True)
        resolve_ids(actor, Carrier, routes, "carrier", errors, required=True)
        resolve_ids(actor, Driver, routes, "driver", errors, required=False)
        resolve_ids(actor, Vehicle, routes, "vehicle", errors, required=False)
        self._resolve_shipments(routes, errors)
        # The plan's rules live in the service; asked here too so that one answer lists the
        # unresolved ids and the broken rules together.
        problems = route_plan_problems(
            organization_id=self.context["actor"].organization.pk,
            date=attrs["date"],
            routes=routes,
        )
        for index, field, message in problems.items():
            errors.add(index, field, message)
        errors.raise_if_any()
        return attrs

    def _resolve_shipments(self, routes, errors) -> None:
        """Shipment references to shipments (a reference nobody has is reported)."""
        references = {ref for r in routes for s in r["stops"] for ref in s["shipment_references"]}
        # Another carrier's shipment is as unknown to a carrier-bound actor as a missing one.
        visible = visible_to(self.context.get("actor"), Shipment)
        found = {s.reference: s for s in visible.filter(reference__in=references)}
        for index, route in enumerate(routes):
            for position, stop in enumerate(route["stops"]):
                shipments = []
                where = f"stops.{position}"
                for ref in stop.pop("shipment_references"):
                    shipment = found.get(ref)
                    if shipment is None:
                        errors.add(index, where, f"Unknown shipment reference {ref!r}.")
                    else:
                        shipments.append(shipment)
                stop["shipments"] = shipments
