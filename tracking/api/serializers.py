from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import make_password
from rest_framework import serializers

from carriers.models import Carrier, Driver, Vehicle
from control_tower.api.bulk import BulkErrors, resolve_ids
from control_tower.api.fields import LineStringField, PointField
from control_tower.api.serializers import TenantModelSerializer
from tracking.models import (
    CLOSED_ROUTE_STATUSES,
    OPEN_STOP_STATUSES,
    FailureReason,
    Hub,
    Route,
    RouteStatus,
    Shipment,
    ShipmentEvent,
    ShipmentStatus,
    Stop,
)
from tracking.services.shipments import FINAL_STATUSES

# --- hubs --------------------------------------------------------------------------------


class HubSerializer(TenantModelSerializer):
    location = PointField()

    class Meta:
        model = Hub
        fields = ["id", "code", "name", "kind", "address", "location", "is_active", "created_at"]
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
    "promised_window_start",
    "promised_window_end",
    "created_at",
    "updated_at",
]
INITIAL_STATUSES = [ShipmentStatus.INFO_RECEIVED, ShipmentStatus.AT_HUB]


def _check_window(attrs, instance, start: str, end: str) -> None:
    begin = attrs.get(start, getattr(instance, start, None))
    finish = attrs.get(end, getattr(instance, end, None))
    if begin is not None and finish is not None and begin >= finish:
        raise serializers.ValidationError({end: ["Must be after the start of the window."]})


class ShipmentSerializer(TenantModelSerializer):
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
    status = serializers.ChoiceField(
        choices=ShipmentStatus.choices,
        required=False,
        help_text="On creation only (info_received or at_hub); later use the transition call.",
    )

    class Meta:
        model = Shipment
        fields = SHIPMENT_FIELDS
        read_only_fields = ["id", "status_changed_at", "created_at", "updated_at"]
        unique_in_organization = (("reference",), ("barcode",))

    def validate_country_code(self, value: str) -> str:
        if len(value) != 2 or not value.isalpha():
            raise serializers.ValidationError("Use a two-letter ISO code, e.g. CL.")
        return value.upper()

    def validate(self, attrs):
        if self.instance is not None and "status" in attrs:
            raise serializers.ValidationError(
                {"status": ["Change the status with POST /shipments/{id}/transition/."]}
            )
        if (
            self.instance is None
            and attrs.get("status", INITIAL_STATUSES[0]) not in INITIAL_STATUSES
        ):
            raise serializers.ValidationError(
                {"status": ["A new shipment is info_received or at_hub."]}
            )
        if not self.context.get("bulk"):
            attrs = super().validate(attrs)
        _check_window(attrs, self.instance, "promised_window_start", "promised_window_end")
        if "delivery_pin" in attrs:
            pin = attrs.pop("delivery_pin")
            attrs["delivery_pin_hash"] = make_password(pin) if pin else ""
        return attrs

    def get_pin_required(self, obj) -> bool:
        return bool(getattr(obj, "delivery_pin_hash", ""))


class ShipmentBulkItemSerializer(ShipmentSerializer):
    """One item of a bulk upload: related ids are resolved for the whole batch at once."""

    carrier = serializers.IntegerField(required=False, allow_null=True)
    hub = serializers.IntegerField(required=False, allow_null=True)

    class Meta(ShipmentSerializer.Meta):
        validators = []


class ShipmentBulkCreateSerializer(serializers.Serializer):
    """Validates every item and the batch as a whole, and reports all problems at once,
    keyed by item index."""

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
        resolve_ids(Carrier, valid, "carrier", batch_errors, required=False)
        resolve_ids(Hub, valid, "hub", batch_errors, required=False)
        for field in ("reference", "barcode"):
            seen: dict[str, int] = {}
            for index, raw in enumerate(raw_items):
                value = raw.get(field) if isinstance(raw, dict) else None
                if not isinstance(value, str) or not value:
                    continue
                if value in seen:
                    errors.add(index, field, f"Repeats item {seen[value]} of this batch.")
                seen.setdefault(value, index)
            taken = set(
                Shipment.objects.filter(**{f"{field}__in": list(seen)}).values_list(
                    field, flat=True
                )
            )
            for index, item in zip(positions, valid, strict=True):
                if item[field] in taken:
                    errors.add(index, field, f"A shipment with this {field} already exists.")
        # resolve_ids numbered the valid items 0..n; map back to positions in the request.
        for local, fields in batch_errors.errors.items():
            for field, messages in fields.items():
                for message in messages:
                    errors.add(positions[local], field, message)
        errors.raise_if_any(wrap=False)
        return valid


class ShipmentBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    shipments = serializers.ListField(child=serializers.DictField())


class ShipmentTransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=ShipmentStatus.choices)
    occurred_at = serializers.DateTimeField(required=False)
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


def _check_crew(attrs, instance) -> None:
    carrier = attrs.get("carrier", getattr(instance, "carrier", None))
    for name in ("driver", "vehicle"):
        related = attrs.get(name, getattr(instance, name, None))
        if related is not None and carrier is not None and related.carrier_id != carrier.pk:
            raise serializers.ValidationError({name: ["Belongs to another carrier."]})


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
        unique_in_organization = (("date", "code"),)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        _check_crew(attrs, self.instance)
        _check_window(attrs, self.instance, "planned_start", "planned_end")
        return attrs


class StopSerializer(TenantModelSerializer):
    location = PointField()
    shipments = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Shipment.objects,
        required=False,
        help_text="Ids of the shipments handed over at this stop.",
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
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "eta",
            "eta_earliest",
            "eta_latest",
            "eta_updated_at",
            "actual_arrival",
            "actual_departure",
            "failure_reason",
            "updated_at",
        ]
        unique_in_organization = (("route", "sequence"),)
        validators = []  # the check above names the field (`sequence`)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        _check_window(attrs, self.instance, "window_start", "window_end")
        route = attrs.get("route", getattr(self.instance, "route", None))
        if self.instance is not None and "route" in attrs and attrs["route"] != self.instance.route:
            raise serializers.ValidationError(
                {"route": ["Moving a stop to another route is a reassignment, not an edit."]}
            )
        if route is not None and route.status in CLOSED_ROUTE_STATUSES:
            raise serializers.ValidationError({"route": [f"The route is {route.status}."]})
        for shipment in attrs.get("shipments", []):
            if shipment.status in FINAL_STATUSES:
                raise serializers.ValidationError(
                    {"shipments": [f"Shipment {shipment.reference} is {shipment.status}."]}
                )
        return attrs


class StopFailSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=FailureReason.choices)
    occurred_at = serializers.DateTimeField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


class StopEventSerializer(serializers.Serializer):
    occurred_at = serializers.DateTimeField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)


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
    window_start = serializers.DateTimeField(required=False, allow_null=True)
    window_end = serializers.DateTimeField(required=False, allow_null=True)
    planned_arrival = serializers.DateTimeField(required=False, allow_null=True)
    planned_service_s = serializers.IntegerField(min_value=0, required=False)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=500)

    def validate(self, attrs):
        _check_window(attrs, None, "window_start", "window_end")
        return attrs


class PlanRouteSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32)
    hub = serializers.IntegerField()
    carrier = serializers.IntegerField()
    driver = serializers.IntegerField(required=False, allow_null=True)
    vehicle = serializers.IntegerField(required=False, allow_null=True)
    planned_start = serializers.DateTimeField(required=False, allow_null=True)
    planned_end = serializers.DateTimeField(required=False, allow_null=True)
    planned_geometry = LineStringField(required=False, allow_null=True)
    planned_distance_m = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    planned_duration_s = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    stops = PlanStopSerializer(many=True)

    def validate(self, attrs):
        _check_window(attrs, None, "planned_start", "planned_end")
        return attrs


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
        resolve_ids(Hub, routes, "hub", errors, required=True)
        resolve_ids(Carrier, routes, "carrier", errors, required=True)
        resolve_ids(Driver, routes, "driver", errors, required=False)
        resolve_ids(Vehicle, routes, "vehicle", errors, required=False)
        self._check_codes(attrs["date"], routes, errors)
        self._resolve_shipments(routes, errors)
        for index, route in enumerate(routes):
            carrier = route.get("carrier")
            for name in ("driver", "vehicle"):
                member = route.get(name)
                if (
                    isinstance(member, Driver | Vehicle)
                    and isinstance(carrier, Carrier)
                    and member.carrier_id != carrier.pk
                ):
                    errors.add(index, name, "Belongs to another carrier.")
            sequences = [s.get("sequence") for s in route["stops"] if s.get("sequence")]
            if len(sequences) != len(set(sequences)):
                errors.add(index, "stops", "Two stops share a sequence number.")
        errors.raise_if_any()
        return attrs

    def _check_codes(self, date, routes, errors) -> None:
        codes = [r["code"] for r in routes]
        taken = set(Route.objects.filter(date=date, code__in=codes).values_list("code", flat=True))
        seen = set()
        for index, code in enumerate(codes):
            if code in taken:
                errors.add(index, "code", f"Route {code} already exists on {date}.")
            if code in seen:
                errors.add(index, "code", f"Route {code} appears twice in this plan.")
            seen.add(code)

    def _resolve_shipments(self, routes, errors) -> None:
        references = {ref for r in routes for s in r["stops"] for ref in s["shipment_references"]}
        found = {s.reference: s for s in Shipment.objects.filter(reference__in=references)}
        planned = set(
            Shipment.objects.filter(
                reference__in=references,
                stop_shipments__stop__status__in=OPEN_STOP_STATUSES,
                stop_shipments__stop__route__status__in=[
                    RouteStatus.PLANNED,
                    RouteStatus.IN_PROGRESS,
                ],
            ).values_list("reference", flat=True)
        )
        used: dict[str, str] = {}
        for index, route in enumerate(routes):
            for position, stop in enumerate(route["stops"]):
                shipments = []
                where = f"stops.{position}"
                for ref in stop.pop("shipment_references"):
                    shipment = found.get(ref)
                    if shipment is None:
                        errors.add(index, where, f"Unknown shipment reference {ref!r}.")
                        continue
                    if shipment.status in FINAL_STATUSES:
                        errors.add(index, where, f"Shipment {ref} is {shipment.status}.")
                    if ref in planned:
                        errors.add(index, where, f"Shipment {ref} is already on an open route.")
                    if ref in used:
                        errors.add(index, where, f"Shipment {ref} is also on {used[ref]}.")
                    used[ref] = f"route {route['code']} stop {position + 1}"
                    shipments.append(shipment)
                stop["shipments"] = shipments
                if "location" not in stop:
                    located = next((s.location for s in shipments if s.location), None)
                    if located is None:
                        errors.add(index, where, "Give a location or a geocoded shipment.")
                    else:
                        stop["location"] = located
                if not stop.get("address") and shipments:
                    stop["address"] = f"{shipments[0].address_line1}, {shipments[0].city}"
