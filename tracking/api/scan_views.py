"""Barcode scans (ingest and reads) and the chain-of-custody reads of a shipment."""

from __future__ import annotations

import re

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from control_tower.api.base import TenantAPIView, TenantViewSet
from control_tower.api.bulk import index_list_errors
from control_tower.errors import DomainError
from control_tower.tenancy.roles import Resource
from tracking.api.scan_serializers import (
    CustodyEntrySerializer,
    CustodyExportSerializer,
    CustodyVerificationSerializer,
    ScanBatchResultSerializer,
    ScanBatchSerializer,
    ScanSerializer,
)
from tracking.ingest.auth import DEVICE_KEY_OR_SESSION
from tracking.models import CustodyEntry, Scan, ScanResult, ScanType
from tracking.services.custody import custody_export, custody_verify
from tracking.services.scans import scans_record


class ScanIngestView(TenantAPIView):
    """`POST /api/v1/ingest/scans` — a batch of barcode scans from a phone, a scanner, a carrier
    system or a person."""

    authentication_classes = DEVICE_KEY_OR_SESSION
    resource = Resource.TRACKING

    @extend_schema(
        operation_id="ingest_scans",
        request=ScanBatchSerializer,
        responses={200: ScanBatchResultSerializer},
        description=(
            'Body `{"scans": [...]}` (a bare array is accepted too), processed in order. Each '
            "scan is stored whatever it did; `result` says what: `applied` (status changed), "
            "`unchanged`, `recorded` (a handoff, or older than the current status), `illegal` "
            "(refused by the status machine, recorded only), `unknown_barcode`. A replay (same "
            "`event_id`, or same caller, barcode, type and time) answers the original outcome "
            "with `duplicate: true` and changes nothing. One malformed scan → 400 naming its "
            "index and field, nothing stored. Device tokens and carrier-bound callers only see "
            "their carrier's shipments."
        ),
    )
    def post(self, request):
        items = request.data.get("scans") if isinstance(request.data, dict) else request.data
        body = ScanBatchSerializer(data={"scans": items}, context={"actor": self.actor})
        if not body.is_valid():
            raise _batch_error(body.errors)
        outcomes = scans_record(actor=self.actor, items=body.validated_data["scans"])
        return Response(
            {
                "received": len(outcomes),
                "duplicates": sum(o.duplicate for o in outcomes),
                "results": [o.as_dict() for o in outcomes],
            }
        )


def _batch_error(errors) -> DomainError:
    fields = index_list_errors(errors)
    per_item = fields.get("scans")
    if isinstance(per_item, dict) and per_item and all(k.isdigit() for k in per_item):
        first = min(per_item, key=int)
        first_fields = ", ".join(per_item[first])
        detail = (
            f"Scan {first} is invalid ({first_fields}); {len(per_item)} invalid in all, "
            "nothing was stored."
        )
    else:
        detail = "The request has invalid fields; nothing was stored."
    return DomainError(detail, fields=fields, code="validation_error")


class ScanFilter(filters.FilterSet):
    # Plain ids: an id that is not the caller's simply matches nothing.
    shipment = filters.NumberFilter()
    device = filters.NumberFilter()
    hub = filters.NumberFilter()
    result = filters.MultipleChoiceFilter(choices=ScanResult.choices)
    scan_type = filters.MultipleChoiceFilter(choices=ScanType.choices)
    occurred_after = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Scan
        fields = ["shipment", "barcode", "result", "scan_type", "device", "hub"]


class ScanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Stored scans, newest first. Carrier users and carrier-bound keys see the scans of their
    carrier's shipments and the scans their carrier's devices and keys made."""

    model = Scan
    resource = Resource.TRACKING
    serializer_class = ScanSerializer
    filterset_class = ScanFilter
    search_fields = ["barcode", "event_id", "shipment__reference"]
    ordering_fields = ["occurred_at", "received_at"]
    ordering = ["-occurred_at", "-id"]

    def optimize_queryset(self, queryset):
        return queryset.select_related("shipment", "hub")


class CustodyActionsMixin:
    """The chain of custody of one shipment, for `ShipmentViewSet`: reads, so they need
    shipments read permission, and `get_object()` applies the viewset's carrier narrowing."""

    @extend_schema(request=None, responses=CustodyEntrySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def custody(self, request, pk=None):
        """The chain of custody, oldest first, with each link's hashes."""
        shipment = self.get_object()
        entries = CustodyEntry.objects.filter(shipment_id=shipment.pk).order_by("sequence")
        return Response(CustodyEntrySerializer(entries, many=True).data)

    @extend_schema(request=None, responses=CustodyVerificationSerializer)
    @action(
        detail=True,
        methods=["get"],
        url_path="custody/verify",
        pagination_class=None,
        filter_backends=[],
    )
    def custody_verify(self, request, pk=None):
        """Recompute the chain: `valid`, the number of entries and the first broken link."""
        return Response(custody_verify(self.get_object()).as_dict())

    @extend_schema(
        request=None,
        responses={
            (200, "application/json"): OpenApiResponse(
                CustodyExportSerializer,
                description="A self-contained document for scripts/verify_custody.py "
                "(served as an attachment).",
            )
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="custody/export",
        pagination_class=None,
        filter_backends=[],
    )
    def custody_export(self, request, pk=None):
        """The chain as a file anyone can verify offline."""
        shipment = self.get_object()
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", shipment.reference) or str(shipment.pk)
        return Response(
            custody_export(shipment),
            headers={"Content-Disposition": f'attachment; filename="custody-{name}.json"'},
        )


__all__ = ["CustodyActionsMixin", "ScanIngestView", "ScanViewSet"]
