"""Proof of delivery through the API: upload (device, key or person) and reads with signed
file links."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db.models import Prefetch
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from control_tower.api.base import TenantAPIView, TenantViewSet
from control_tower.api.fields import FiniteFloatField, PointField, SaneDateTimeField
from control_tower.errors import DomainError
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.roles import Resource
from tracking.ingest.auth import DEVICE_KEY_OR_SESSION
from tracking.ingest.image_sanitizer import ImageRejected, sanitize_image
from tracking.models import (
    FailureReason,
    PodFile,
    PodOutcome,
    ProofOfDelivery,
    SafePlace,
    Shipment,
    Stop,
)
from tracking.services.proof_of_delivery import PodInput, pod_capture, pod_file_url


class PodUploadSerializer(serializers.Serializer):
    shipment = serializers.IntegerField(required=False, help_text="Shipment id, or:")
    shipment_reference = serializers.CharField(required=False, max_length=64)
    stop = serializers.IntegerField(required=False, help_text="Completed with the delivery.")
    idempotency_key = serializers.CharField(
        max_length=200, help_text="The same key again returns the first POD (safe retries)."
    )
    recipient_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    pin = serializers.CharField(required=False, allow_blank=True, max_length=32)
    lat = FiniteFloatField(required=False, min_value=-90, max_value=90)
    lon = FiniteFloatField(required=False, min_value=-180, max_value=180)
    captured_at = SaneDateTimeField(required=False, help_text="Default: now.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=500)
    photos = serializers.ListField(
        child=serializers.FileField(), required=False, help_text="JPEG, PNG or WebP; repeatable."
    )
    signature = serializers.FileField(required=False)
    outcome = serializers.ChoiceField(
        choices=PodOutcome.choices,
        default=PodOutcome.DELIVERED,
        help_text="attempt_failed: evidence of a failed attempt (the stop fails with `reason`).",
    )
    reason = serializers.ChoiceField(
        choices=FailureReason.choices,
        required=False,
        allow_blank=True,
        help_text="Why the attempt failed (required with outcome=attempt_failed).",
    )
    left_at = serializers.ChoiceField(
        choices=SafePlace.choices,
        required=False,
        allow_blank=True,
        help_text="Where the parcel was left (deliveries).",
    )

    def validate(self, attrs):
        if ("shipment" in attrs) == ("shipment_reference" in attrs):
            raise serializers.ValidationError(
                {"shipment": ["Give the shipment id or shipment_reference (one of them)."]}
            )
        if ("lat" in attrs) != ("lon" in attrs):
            raise serializers.ValidationError({"lat": ["Send lat and lon together."]})
        if len(attrs.get("photos", [])) > settings.POD_MAX_PHOTOS:
            raise serializers.ValidationError(
                {"photos": [f"At most {settings.POD_MAX_PHOTOS} photos."]}
            )
        if not attrs.get("photos") and "signature" not in attrs:
            raise serializers.ValidationError(
                {"photos": ["Send at least one photo or a signature."]}
            )
        failed = attrs["outcome"] == PodOutcome.ATTEMPT_FAILED
        if failed and not attrs.get("reason"):
            raise serializers.ValidationError(
                {"reason": ["Say why the attempt failed (the failure reason taxonomy)."]}
            )
        if not failed and attrs.get("reason"):
            raise serializers.ValidationError({"reason": ["Only for outcome=attempt_failed."]})
        if failed and attrs.get("left_at"):
            raise serializers.ValidationError(
                {"left_at": ["Nothing is left after a failed attempt."]}
            )
        captured = attrs.get("captured_at")
        if captured and captured > timezone.now() + timedelta(minutes=10):
            raise serializers.ValidationError({"captured_at": ["In the future."]})
        return attrs


class PodFileSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    expires_at = serializers.SerializerMethodField()

    class Meta:
        model = PodFile
        fields = [
            "id",
            "kind",
            "url",
            "expires_at",
            "sha256",
            "width",
            "height",
            "size_bytes",
            "content_type",
        ]

    def _link(self, obj):
        if not hasattr(obj, "_link"):
            path, expires = pod_file_url(obj)
            request = self.context.get("request")
            obj._link = (request.build_absolute_uri(path) if request else path, expires)
        return obj._link

    def get_url(self, obj) -> str:
        return self._link(obj)[0]

    def get_expires_at(self, obj) -> str:
        return self._link(obj)[1].isoformat()


class ProofOfDeliverySerializer(serializers.ModelSerializer):
    location = PointField(allow_null=True)
    shipment_reference = serializers.CharField(source="shipment.reference", read_only=True)
    files = PodFileSerializer(many=True, read_only=True)

    class Meta:
        model = ProofOfDelivery
        fields = [
            "id",
            "idempotency_key",
            "shipment",
            "shipment_reference",
            "stop",
            "device",
            "recipient_name",
            "pin_verified",
            "location",
            "captured_at",
            "received_at",
            "distance_m",
            "outside_geofence",
            "note",
            "outcome",
            "failure_reason",
            "left_at",
            "files",
        ]


class PodUploadView(TenantAPIView):
    """`POST /api/v1/ingest/pod` — photos and/or signature, recipient, PIN, where and when."""

    authentication_classes = DEVICE_KEY_OR_SESSION
    parser_classes = [MultiPartParser, FormParser]
    resource = Resource.TRACKING

    @extend_schema(
        operation_id="ingest_pod",
        request={"multipart/form-data": PodUploadSerializer},
        responses={201: ProofOfDeliverySerializer, 200: ProofOfDeliverySerializer},
    )
    def post(self, request):
        form = PodUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        values = form.validated_data
        shipment = self._shipment(values)
        stop = self._stop(values.get("stop"), shipment)
        photos = [self._clean(upload, "photo", "photos") for upload in values.get("photos", [])]
        signature = (
            self._clean(values["signature"], "signature", "signature")
            if "signature" in values
            else None
        )
        location = Point(values["lon"], values["lat"], srid=4326) if "lat" in values else None
        pod, created = pod_capture(
            actor=self.actor,
            shipment=shipment,
            data=PodInput(
                idempotency_key=values["idempotency_key"],
                captured_at=values.get("captured_at") or timezone.now(),
                recipient_name=values.get("recipient_name", ""),
                pin=values.get("pin") or None,
                location=location,
                note=values.get("note", ""),
                stop=stop,
                outcome=values["outcome"],
                failure_reason=values.get("reason", ""),
                left_at=values.get("left_at", ""),
            ),
            photos=photos,
            signature=signature,
        )
        pod = _with_files(ProofOfDelivery.objects).get(pk=pod.pk)
        body = ProofOfDeliverySerializer(pod, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _shipment(self, values) -> Shipment:
        shipments = visible_to(self.actor, Shipment)  # devices and carrier users: their own
        if "shipment" in values:
            shipment = shipments.filter(pk=values["shipment"]).first()
        else:
            shipment = shipments.filter(reference=values["shipment_reference"]).first()
        if shipment is None:  # also another organization's or carrier's: nothing revealed
            raise exceptions.NotFound("No such shipment.")
        return shipment

    def _stop(self, stop_id, shipment) -> Stop | None:
        if stop_id is None:
            return None
        stop = Stop.objects.select_related("route").filter(pk=stop_id, shipments=shipment).first()
        if stop is None:
            raise DomainError(
                "That stop does not carry this shipment.",
                fields={"stop": ["Not a stop of this shipment."]},
                code="validation_error",
            )
        return stop

    @staticmethod
    def _clean(upload, kind: str, field: str):
        try:
            return sanitize_image(upload, kind=kind)
        except ImageRejected as exc:
            raise DomainError(
                f"{field}: {exc}", fields={field: [str(exc)]}, code="validation_error"
            ) from None


def _with_files(queryset):
    return queryset.select_related("shipment").prefetch_related(
        Prefetch("files", queryset=PodFile.objects.order_by("kind", "id"))
    )


class PodFilter(filters.FilterSet):
    captured_after = filters.IsoDateTimeFilter(field_name="captured_at", lookup_expr="gte")
    captured_before = filters.IsoDateTimeFilter(field_name="captured_at", lookup_expr="lt")

    class Meta:
        model = ProofOfDelivery
        fields = ["shipment", "stop", "device", "outside_geofence"]


class ProofOfDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Proofs of delivery, newest first, each with signed links to its files (valid for
    POD_URL_TTL_S seconds: fetch the POD again for fresh links)."""

    model = ProofOfDelivery
    resource = Resource.TRACKING
    serializer_class = ProofOfDeliverySerializer
    filterset_class = PodFilter
    ordering_fields = ["captured_at", "distance_m"]

    def optimize_queryset(self, queryset):
        return _with_files(queryset).order_by("-captured_at", "-id")
