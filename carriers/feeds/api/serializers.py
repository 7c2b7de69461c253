"""Serializers of the carrier feeds API: feeds, inbound events, file imports."""

from __future__ import annotations

from rest_framework import serializers

from carriers.feeds.adapters import ADAPTER_CHOICES
from carriers.feeds.models import CarrierFeed, FeedImport, ImportKind, InboundCarrierEvent
from control_tower.api.serializers import TenantModelSerializer

# `result` and `kind` are plain strings in the schema: their choice sets share a name with
# the scans' and the carriers' enums (values listed in the help texts).
RESULT_HELP = "A scan result (applied, unchanged, recorded, illegal, unknown_barcode), or "
RESULT_HELP += "unmapped (unknown code: flagged, not applied) or ignored (mapped to no scan)."


class CarrierFeedSerializer(TenantModelSerializer):
    adapter = serializers.ChoiceField(choices=ADAPTER_CHOICES)
    config = serializers.JSONField(
        required=False,
        help_text="Adapter config: status_map, reason_map, timezone, columns (file headers), "
        "and for generic_json events_path and fields (docs/CARRIER_FEEDS.md).",
    )
    signing_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Optional: webhook bodies must then be signed (base64 HMAC-SHA256 of the raw "
        "body) in the adapter's header; empty removes it. Never shown again.",
    )
    signed = serializers.SerializerMethodField()
    signature_header = serializers.SerializerMethodField()
    events_url = serializers.SerializerMethodField()
    flagged_events = serializers.IntegerField(read_only=True, required=False, default=None)

    class Meta:
        model = CarrierFeed
        fields = [
            "id",
            "carrier",
            "name",
            "adapter",
            "config",
            "is_active",
            "signing_secret",
            "signed",
            "signature_header",
            "events_url",
            "flagged_events",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        unique_in_organization = (("carrier", "name"),)

    def get_signed(self, obj) -> bool:
        return bool(obj.signing_secret_encrypted)

    def get_signature_header(self, obj) -> str:
        from carriers.feeds.services import feed_signature_header

        return feed_signature_header(obj)

    def get_events_url(self, obj) -> str:
        return f"/api/v1/carrier-feeds/{obj.pk}/events/"


class ShipmentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    status = serializers.CharField()


class EventOutcomeSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the event in the body.")
    id = serializers.IntegerField(help_text="The stored inbound event (the original for a replay).")
    event_key = serializers.CharField()
    barcode = serializers.CharField()
    carrier_status_code = serializers.CharField()
    carrier_reason_code = serializers.CharField(allow_blank=True)
    scan_type = serializers.CharField(allow_null=True)
    reason_code = serializers.CharField(allow_null=True)
    flagged = serializers.BooleanField(help_text="Unknown code: kept, not applied.")
    result = serializers.CharField(help_text=RESULT_HELP)
    duplicate = serializers.BooleanField()
    shipment = ShipmentRefSerializer(allow_null=True)
    detail = serializers.CharField(allow_blank=True)


class EventBatchResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    flagged = serializers.IntegerField()
    duplicate = serializers.BooleanField(help_text="Every event of the body was a replay.")
    results = EventOutcomeSerializer(many=True)


class InboundCarrierEventSerializer(serializers.ModelSerializer):
    result = serializers.CharField(read_only=True, help_text=RESULT_HELP)
    shipment_reference = serializers.CharField(
        source="shipment.reference", allow_null=True, default=None
    )

    class Meta:
        model = InboundCarrierEvent
        fields = [
            "id",
            "carrier",
            "feed",
            "source",
            "feed_import",
            "event_key",
            "barcode",
            "reference",
            "carrier_status_code",
            "carrier_reason_code",
            "occurred_at",
            "location",
            "note",
            "scan_type",
            "reason_code",
            "flagged",
            "result",
            "scan",
            "shipment",
            "shipment_reference",
            "detail",
            "received_at",
            "processed_at",
            "raw",
        ]
        read_only_fields = fields


class ReprocessResultSerializer(serializers.Serializer):
    reprocessed = serializers.IntegerField(help_text="Events now mapped and applied.")
    still_flagged = serializers.IntegerField()
    events = InboundCarrierEventSerializer(many=True)


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .csv (UTF-8) or .xlsx file.")
    kind = serializers.CharField(
        help_text=f"One of: {', '.join(ImportKind.values)} (manifest: creates shipments)."
    )
    dry_run = serializers.BooleanField(default=False)


class FeedImportSerializer(serializers.ModelSerializer):
    kind = serializers.CharField(read_only=True, help_text="manifest or status.")

    class Meta:
        model = FeedImport
        fields = [
            "id",
            "feed",
            "carrier",
            "kind",
            "file_name",
            "sha256",
            "size",
            "row_count",
            "dry_run",
            "state",
            "errors",
            "summary",
            "created_by",
            "created_at",
            "applied_at",
        ]
        read_only_fields = fields
