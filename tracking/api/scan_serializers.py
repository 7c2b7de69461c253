"""Serializers of the scan ingest, scan reads and the chain of custody reads."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from control_tower.api.fields import PointField, SaneDateTimeField
from tracking.models import CustodyEntry, FailureReason, Hub, Scan, ScanResult, ScanType
from tracking.services.scans import scan_item_problems

# --- ingest ------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [{"type": "integer"}, {"type": "string"}],
        "description": "The hub's id or its code (a hub of your organization).",
    }
)
class HubRefField(serializers.Field):
    """An id or a code. `ScanBatchSerializer` fetches every hub the batch names in two queries
    up front (`context["hubs"]`); one that is not the organization's is an error of its item."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str) or data == "":
            raise serializers.ValidationError("Give the hub's id or code.")
        hubs = self.context.get("hubs")
        hub = hubs.get(data) if hubs is not None else _hubs_named([data]).get(data)
        if hub is None:
            raise serializers.ValidationError(f"No hub {data!r} in your organization.")
        return hub

    def to_representation(self, value):
        return value.pk


def _hubs_named(refs) -> dict:
    """`{ref: Hub}` for refs that are ids (int) or codes (str) of the organization's hubs."""
    ids = {r for r in refs if isinstance(r, int) and not isinstance(r, bool)}
    codes = {r for r in refs if isinstance(r, str) and r}
    found: dict = dict(Hub.objects.in_bulk(ids)) if ids else {}
    if codes:
        found.update({hub.code: hub for hub in Hub.objects.filter(code__in=codes)})
    return found


class ScanItemSerializer(serializers.Serializer):
    event_id = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="Client event id (a UUID): the idempotency key. Without it the key is "
        "caller + barcode + scan_type + occurred_at.",
    )
    barcode = serializers.CharField(max_length=64, required=False)
    reference = serializers.CharField(
        max_length=64, required=False, help_text="Instead of barcode: the shipment reference."
    )
    scan_type = serializers.ChoiceField(choices=ScanType.choices)
    occurred_at = SaneDateTimeField(help_text="When it was scanned (ISO-8601).")
    location = PointField(required=False, allow_null=True)
    hub = HubRefField(required=False, allow_null=True)
    reason_code = serializers.ChoiceField(
        choices=FailureReason.choices,
        required=False,
        allow_blank=True,
        help_text="Required for attempt_failed.",
    )
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)
    carrier_status_code = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="The carrier's own status code, kept as sent (evidence).",
    )
    carrier_reason_code = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="The carrier's own reason code, kept as sent.",
    )

    def validate(self, attrs):
        problems = scan_item_problems(attrs)
        if problems:
            raise serializers.ValidationError({f: [m] for f, m in problems.items()})
        return attrs


class ScanBatchSerializer(serializers.Serializer):
    """A batch is validated whole: one bad item and nothing is stored."""

    scans = ScanItemSerializer(
        many=True,
        allow_empty=False,
        help_text=f"Up to SCAN_BATCH_MAX (default {settings.SCAN_BATCH_MAX}) scans, in the "
        "order they happened.",
    )

    def to_internal_value(self, data):
        scans = data.get("scans") if isinstance(data, dict) else None
        if isinstance(scans, list):
            # Checked before any item is looked at (and read per call, so tests can change it).
            if len(scans) > settings.SCAN_BATCH_MAX:
                raise serializers.ValidationError(
                    {"scans": [f"At most {settings.SCAN_BATCH_MAX} scans per request; split it."]}
                )
            refs = [item.get("hub") for item in scans if isinstance(item, dict)]
            self.context["hubs"] = _hubs_named([r for r in refs if r is not None])
        return super().to_internal_value(data)


class ScanShipmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    status = serializers.CharField()


class ScanOutcomeSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the scan in the request.")
    id = serializers.IntegerField(help_text="The stored scan (the original one for a replay).")
    barcode = serializers.CharField()
    result = serializers.ChoiceField(choices=ScanResult.choices)
    duplicate = serializers.BooleanField(help_text="A replay: nothing was changed.")
    shipment = ScanShipmentSerializer(allow_null=True, help_text="Its status after the scan.")
    detail = serializers.CharField(allow_blank=True)


class ScanBatchResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    results = ScanOutcomeSerializer(many=True)


# --- reads -------------------------------------------------------------------------------


class ScanSerializer(serializers.ModelSerializer):
    location = PointField(allow_null=True)
    shipment_reference = serializers.CharField(
        source="shipment.reference", allow_null=True, default=None
    )
    hub_code = serializers.CharField(source="hub.code", allow_null=True, default=None)

    class Meta:
        model = Scan
        fields = [
            "id",
            "event_id",
            "barcode",
            "scan_type",
            "occurred_at",
            "received_at",
            "result",
            "detail",
            "shipment",
            "shipment_reference",
            "hub",
            "hub_code",
            "location",
            "reason_code",
            "carrier_status_code",
            "carrier_reason_code",
            "note",
            "device",
            "api_key",
        ]
        read_only_fields = fields


class CustodyEntrySerializer(serializers.ModelSerializer):
    location = PointField(allow_null=True)

    class Meta:
        model = CustodyEntry
        fields = [
            "id",
            "sequence",
            "kind",
            "actor",
            "custodian",
            "occurred_at",
            "recorded_at",
            "location",
            "evidence",
            "details",
            "prev_hash",
            "hash",
        ]
        read_only_fields = fields


class CustodyBrokenLinkSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(allow_null=True)
    id = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()


class CustodyVerificationSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    entries = serializers.IntegerField()
    first_broken = CustodyBrokenLinkSerializer(allow_null=True)


class CustodyLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    content = serializers.DictField(help_text="Exactly what is hashed.")
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class CustodyExportSerializer(serializers.Serializer):
    format = serializers.CharField()
    algorithm = serializers.CharField()
    canonical_json = serializers.CharField()
    genesis_prev_hash = serializers.CharField()
    shipment = serializers.DictField()
    exported_at = serializers.CharField()
    links = CustodyLinkSerializer(many=True)
