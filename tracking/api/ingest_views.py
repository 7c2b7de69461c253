"""GPS ingest and reads through the REST API: the native batch, GPX upload, last positions and
a device's track."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F
from django.utils.dateparse import parse_datetime
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from carriers.models import Device
from control_tower.api.base import TenantAPIView, TenantViewSet
from control_tower.api.fields import FiniteFloatField, PointField
from control_tower.errors import DomainError, NotPermitted
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.roles import Resource
from tracking.api.ingest_schema import ping_batch_schema
from tracking.ingest.auth import DEVICE_KEY_OR_SESSION, DeviceTokenAuthentication
from tracking.ingest.gpx import GpxError, parse_gpx
from tracking.ingest.gpx_import import gpx_store
from tracking.ingest.pings import pings_ingest
from tracking.ingest.protocols import parse_native_many
from tracking.models import DevicePosition, Ping, PingSource

INGEST_RESULT = inline_serializer(
    "PingIngestResult",
    {
        "received": serializers.IntegerField(),
        "stored": serializers.IntegerField(help_text="New rows."),
        "duplicates": serializers.IntegerField(help_text="Already stored: replays are fine."),
        "flagged": serializers.IntegerField(help_text="Stored, but kept off the map."),
        "position_moved": serializers.BooleanField(),
    },
)


class PingIngestView(TenantAPIView):
    """`POST /api/v1/ingest/pings` — our driver app's batch (device token only)."""

    authentication_classes = [DeviceTokenAuthentication]
    resource = Resource.TRACKING

    @extend_schema(
        operation_id="ingest_pings",
        request={"application/json": ping_batch_schema()},
        responses={200: INGEST_RESULT},
        description=(
            'A JSON array of up to PING_BATCH_MAX (default 1,000) fixes, or `{"pings": '
            "[...]}`. Each fix: `time` (ISO-8601 or epoch s/ms, required), `lat`, `lon` "
            "(required), `event_id`, `accuracy` (m), `speed` (m/s), `heading` (deg), "
            "`altitude` (m), `battery` (%), `charging`, `moving`, `mock`, `attributes`. "
            "All or nothing: one malformed fix → 400 naming its index and field, nothing "
            "stored. Replays are 200 and change nothing."
        ),
    )
    def post(self, request):
        device = self.actor.device
        if device is None:
            raise NotPermitted("Only a device token may post pings here.")
        items = request.data.get("pings") if isinstance(request.data, dict) else request.data
        if not isinstance(items, list) or not items:
            raise _invalid("pings", "Send a non-empty JSON array of fixes.")
        if len(items) > settings.PING_BATCH_MAX:
            raise _invalid("pings", f"At most {settings.PING_BATCH_MAX} fixes per request.")
        fixes, errors = parse_native_many(items)
        if errors:
            first = next(iter(errors))
            raise DomainError(
                f"Fix {first} is invalid ({len(errors)} invalid in all); nothing was stored.",
                fields={"pings": errors},
                code="validation_error",
            )
        result = pings_ingest(device=device, fixes=fixes, source=PingSource.NATIVE)
        return Response(result.as_dict())


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(message, fields={field: [message]}, code="validation_error")


class GpxUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A GPX 1.0/1.1 file (trk/trkseg/trkpt with <time>).")
    device = serializers.IntegerField(
        required=False, help_text="The device the track belongs to (not needed with a token)."
    )


class GpxImportView(TenantAPIView):
    """`POST /api/v1/ingest/gpx` — back-fill a device's track from a GPX file."""

    authentication_classes = DEVICE_KEY_OR_SESSION
    parser_classes = [MultiPartParser, FormParser]
    resource = Resource.TRACKING

    @extend_schema(
        operation_id="ingest_gpx",
        request={"multipart/form-data": GpxUploadSerializer},
        responses={200: INGEST_RESULT},
        description="Same rules as the live ingest: duplicates skipped, outliers flagged. "
        f"Limits: GPX_MAX_BYTES (default {settings.GPX_MAX_BYTES // 2**20} MB), "
        f"GPX_MAX_POINTS (default {settings.GPX_MAX_POINTS}).",
    )
    def post(self, request):
        form = GpxUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        device = self._device(form.validated_data.get("device"))
        upload = form.validated_data["file"]
        if upload.size > settings.GPX_MAX_BYTES:
            raise _invalid("file", f"The file is larger than {settings.GPX_MAX_BYTES} bytes.")
        try:
            fixes = parse_gpx(upload.read())
        except GpxError as exc:
            where = {"point": exc.point, "field": exc.field} if exc.point is not None else {}
            message = str(exc) if not where else f"Track point {exc.point}: {exc}"
            raise DomainError(
                message, fields={"file": [message]}, code="validation_error"
            ) from None
        result = gpx_store(device, fixes)
        return Response(result)

    def _device(self, device_id: int | None) -> Device:
        if self.actor.device is not None:
            return self.actor.device
        if device_id is None:
            raise _invalid("device", "Which device is this track from? (device id)")
        devices = visible_to(self.actor, Device).select_related("organization")
        device = devices.filter(pk=device_id).first()
        if device is None:
            raise _invalid("device", f'Invalid pk "{device_id}" - object does not exist.')
        return device


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


class FiniteFloatsSerializer(serializers.ModelSerializer):
    """Model float columns read out through FiniteFloatField (null for Infinity/NaN)."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.FloatField: FiniteFloatField,
    }


class DevicePositionSerializer(FiniteFloatsSerializer):
    location = PointField()
    carrier = serializers.IntegerField(source="device.carrier_id", read_only=True)
    driver = serializers.IntegerField(source="device.driver_id", read_only=True, allow_null=True)
    vehicle = serializers.IntegerField(source="device.vehicle_id", read_only=True, allow_null=True)
    device_name = serializers.CharField(source="device.name", read_only=True)
    stale_seconds = serializers.SerializerMethodField()

    class Meta:
        model = DevicePosition
        fields = [
            "device",
            "device_name",
            "carrier",
            "driver",
            "vehicle",
            "fix_time",
            "received_at",
            "location",
            "accuracy_m",
            "speed_mps",
            "heading_deg",
            "battery_pct",
            "moving",
            "source",
            "stale_seconds",
        ]

    def get_stale_seconds(self, obj) -> int:
        return int((self.context["now"] - obj.fix_time).total_seconds())


class PositionFilter(filters.FilterSet):
    carrier = filters.NumberFilter(field_name="device__carrier")
    driver = filters.NumberFilter(field_name="device__driver")
    seen_after = filters.IsoDateTimeFilter(field_name="fix_time", lookup_expr="gte")

    class Meta:
        model = DevicePosition
        fields = ["device", "carrier", "driver", "seen_after"]


class DevicePositionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The last good position of each device (what the live map shows)."""

    model = DevicePosition
    resource = Resource.TRACKING
    serializer_class = DevicePositionSerializer
    lookup_field = "device"
    lookup_value_regex = r"\d+"
    filterset_class = PositionFilter
    ordering_fields = ["fix_time"]
    ordering = ["-fix_time"]

    def optimize_queryset(self, queryset):
        return queryset.select_related("device").order_by("-fix_time")

    def get_serializer_context(self):
        from django.utils import timezone

        return {**super().get_serializer_context(), "now": timezone.now()}


class PingSerializer(FiniteFloatsSerializer):
    location = PointField()
    flags = serializers.ListField(source="flag_names", child=serializers.CharField())

    class Meta:
        model = Ping
        fields = [
            "device",
            "fix_time",
            "event_id",
            "received_at",
            "location",
            "accuracy_m",
            "speed_mps",
            "heading_deg",
            "altitude_m",
            "battery_pct",
            "charging",
            "moving",
            "mock",
            "source",
            "flags",
            "attributes",
        ]


class PingViewSet(mixins.ListModelMixin, TenantViewSet):
    """`GET /api/v1/pings/?device=ID&since=…&until=…` — a device's stored fixes in time
    order, flagged ones included (add `&good=true` to leave them out)."""

    model = Ping
    resource = Resource.TRACKING
    serializer_class = PingSerializer
    filter_backends = []

    @extend_schema(
        parameters=[
            OpenApiParameter("device", int, required=True),
            OpenApiParameter("since", str, description="ISO-8601, inclusive"),
            OpenApiParameter("until", str, description="ISO-8601, exclusive"),
            OpenApiParameter("good", bool, description="Only fixes without outlier flags"),
        ]
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def optimize_queryset(self, queryset):
        if getattr(self, "swagger_fake_view", False):
            return queryset
        params = self.request.query_params
        device = params.get("device", "")
        if not device.isdigit():
            raise _invalid("device", "Give the device id: ?device=ID.")
        queryset = queryset.filter(device_id=int(device))
        for name, lookup in (("since", "fix_time__gte"), ("until", "fix_time__lt")):
            if params.get(name):
                value = parse_datetime(params[name])
                if value is None:
                    raise _invalid(name, "Use ISO-8601, e.g. 2026-11-25T10:00:00Z.")
                queryset = queryset.filter(**{lookup: value})
        if params.get("good") in {"1", "true", "yes"}:
            from tracking.ingest.pings import OUTLIER_FLAGS

            queryset = queryset.annotate(outlier=F("flags").bitand(int(OUTLIER_FLAGS))).filter(
                outlier=0
            )
        return queryset.order_by("fix_time")
