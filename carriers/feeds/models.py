"""Carrier feeds: a feed per carrier integration, every inbound carrier event kept, and the
file imports (docs/CARRIER_FEEDS.md)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from carriers.feeds.adapters import ADAPTER_CHOICES
from control_tower.tenancy.models import TenantModel
from tracking.models import ScanResult


class CarrierFeed(TenantModel):
    """How one carrier's system talks to us: its adapter and that adapter's config (maps,
    JSON paths, file columns)."""

    carrier = models.ForeignKey("carriers.Carrier", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    adapter = models.CharField(max_length=32, choices=ADAPTER_CHOICES)
    config = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    # Optional: when set, every webhook body must carry its HMAC (carriers/feeds/signing.py).
    signing_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["carrier_id", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "carrier", "name"], name="carrier_feed_name_per_carrier"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.adapter})"


class EventSource(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    FILE = "file", "File import"


class EventResult(models.TextChoices):
    APPLIED = ScanResult.APPLIED.value, ScanResult.APPLIED.label
    UNCHANGED = ScanResult.UNCHANGED.value, ScanResult.UNCHANGED.label
    RECORDED = ScanResult.RECORDED.value, ScanResult.RECORDED.label
    ILLEGAL = ScanResult.ILLEGAL.value, ScanResult.ILLEGAL.label
    UNKNOWN_BARCODE = ScanResult.UNKNOWN_BARCODE.value, ScanResult.UNKNOWN_BARCODE.label
    # Not applied: a code the mapping does not know (flagged), or one it maps to no scan.
    UNMAPPED = "unmapped", "Unknown code: kept, flagged, not applied"
    IGNORED = "ignored", "Known code that records nothing"


class InboundCarrierEvent(TenantModel):
    """One carrier status event as received, whatever became of it: never dropped."""

    id = models.BigAutoField(primary_key=True)
    carrier = models.ForeignKey("carriers.Carrier", on_delete=models.CASCADE, related_name="+")
    feed = models.ForeignKey(CarrierFeed, on_delete=models.CASCADE, related_name="events")
    source = models.CharField(max_length=10, choices=EventSource.choices)
    feed_import = models.ForeignKey(
        "carrier_feeds.FeedImport",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
    )
    # The carrier's event id, or a digest of what the event says when it sends none.
    event_key = models.CharField(max_length=200)
    raw = models.JSONField(default=dict)
    barcode = models.CharField(max_length=64, blank=True)
    reference = models.CharField(max_length=64, blank=True)
    carrier_status_code = models.CharField(max_length=64)
    carrier_reason_code = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField()
    location = models.JSONField(null=True, blank=True, help_text="[lon, lat] or null.")
    note = models.CharField(max_length=500, blank=True)
    scan_type = models.CharField(max_length=20, blank=True)
    reason_code = models.CharField(max_length=32, blank=True)
    flagged = models.BooleanField(default=False)
    result = models.CharField(max_length=20, choices=EventResult.choices)
    scan = models.ForeignKey(
        "tracking.Scan", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    shipment = models.ForeignKey(
        "tracking.Shipment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "feed", "event_key"], name="carrier_event_once_per_feed"
            )
        ]
        indexes = [
            models.Index(
                fields=["organization", "carrier", "flagged"], name="carrier_event_flagged"
            ),
            models.Index(fields=["organization", "feed", "-received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.carrier_status_code} {self.barcode or self.reference} ({self.result})"


class ImportKind(models.TextChoices):
    MANIFEST = "manifest", "Manifest (creates shipments)"
    STATUS = "status", "Status events"


class ImportState(models.TextChoices):
    VALIDATED = "validated", "Dry run: valid, nothing applied"
    REJECTED = "rejected", "Row errors: nothing applied"
    APPLIED = "applied", "Applied"


class FeedImport(TenantModel):
    """One uploaded manifest or status file and what became of it (all or nothing)."""

    feed = models.ForeignKey(CarrierFeed, on_delete=models.CASCADE, related_name="imports")
    carrier = models.ForeignKey("carriers.Carrier", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=ImportKind.choices)
    file_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField(default=0)
    row_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{line, column, message}]")
    summary = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=ImportState.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.file_name} ({self.state})"
