"""What devices send: GPS pings (time-partitioned), last positions, barcode scans."""

from __future__ import annotations

from django.contrib.gis.db import models as gis
from django.db import models
from django.utils import timezone

from control_tower.tenancy.models import TenantModel


class PingSource(models.TextChoices):
    NATIVE = "native", "Driver app (batch API)"
    OSMAND = "osmand", "OsmAnd / Traccar Client (query or form)"
    TRACCAR_JSON = "traccar_json", "Traccar Client 9+ JSON"
    OWNTRACKS = "owntracks", "OwnTracks"
    GPX = "gpx", "GPX import"


class PingFlag(models.IntegerChoices):
    """Why a fix is kept but does not move the map (bits of `Ping.flags`)."""

    POOR_ACCURACY = 1, "Accuracy worse than the limit"
    IMPOSSIBLE_SPEED = 2, "Implied speed from the previous fix is impossible"
    MOCK = 4, "Mock location"
    FUTURE = 8, "Fix time in the future"
    TOO_OLD = 16, "Fix time older than retention"
    STATIONARY_JITTER = 32, "Stationary jitter within accuracy"
    INVALID = 64, "Device marked the fix invalid"


class Ping(TenantModel):
    """One GPS fix. The table is partitioned by day of `fix_time` (created by SQL in the
    migration, hence `managed = False`); the primary key is the idempotency key: a replay of
    the same fix (same device, fix time and client event id) changes nothing."""

    pk = models.CompositePrimaryKey("organization_id", "device_id", "fix_time", "event_id")
    device = models.ForeignKey("carriers.Device", on_delete=models.DO_NOTHING, related_name="+")
    fix_time = models.DateTimeField()
    event_id = models.CharField(max_length=64, blank=True, default="")
    received_at = models.DateTimeField(default=timezone.now)
    location = gis.PointField(srid=4326)
    accuracy_m = models.FloatField(null=True)
    speed_mps = models.FloatField(null=True)
    heading_deg = models.FloatField(null=True)
    altitude_m = models.FloatField(null=True)
    battery_pct = models.SmallIntegerField(null=True)
    charging = models.BooleanField(null=True)
    moving = models.BooleanField(null=True)
    mock = models.BooleanField(default=False)
    source = models.CharField(max_length=16, choices=PingSource.choices)
    flags = models.IntegerField(default=0)
    attributes = models.JSONField(default=dict)

    class Meta(TenantModel.Meta):
        managed = False
        db_table = "tracking_ping"
        ordering = ["fix_time"]

    @property
    def flag_names(self) -> list[str]:
        return [flag.name.lower() for flag in PingFlag if self.flags & flag]


class DevicePosition(TenantModel):
    """The last good position of each device: one row per device, never moved backwards in
    time, never moved by a flagged fix. The live map reads this table."""

    device = models.OneToOneField(
        "carriers.Device", on_delete=models.CASCADE, primary_key=True, related_name="position"
    )
    fix_time = models.DateTimeField()
    received_at = models.DateTimeField()
    location = gis.PointField(srid=4326)
    accuracy_m = models.FloatField(null=True)
    speed_mps = models.FloatField(null=True)
    heading_deg = models.FloatField(null=True)
    battery_pct = models.SmallIntegerField(null=True)
    moving = models.BooleanField(null=True)
    source = models.CharField(max_length=16, choices=PingSource.choices)

    class Meta(TenantModel.Meta):
        indexes = [models.Index(fields=["organization", "fix_time"])]


class ScanType(models.TextChoices):
    PICKED_UP = "picked_up", "Picked up from the shipper"
    ARRIVED_AT_HUB = "arrived_at_hub", "Arrived at hub"
    LOADED = "loaded", "Loaded on a vehicle"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    DELIVERED = "delivered", "Delivered"
    ATTEMPT_FAILED = "attempt_failed", "Delivery attempt failed"
    RETURNED = "returned", "Returned to sender"
    EXCEPTION = "exception", "Exception (damage, loss…)"


class ScanResult(models.TextChoices):
    APPLIED = "applied", "Changed the shipment status"
    UNCHANGED = "unchanged", "Shipment already had that status"
    RECORDED = "recorded", "Recorded (no status change implied)"
    ILLEGAL = "illegal", "Refused by the status machine (recorded only)"
    UNKNOWN_BARCODE = "unknown_barcode", "No shipment with this barcode"


class Scan(TenantModel):
    """A barcode event, kept whatever it did to the shipment (evidence and SLA input)."""

    idempotency_key = models.CharField(max_length=200)
    device = models.ForeignKey(
        "carriers.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    api_key = models.ForeignKey(
        "control_tower.ApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    event_id = models.CharField(max_length=64, blank=True)
    barcode = models.CharField(max_length=64)
    shipment = models.ForeignKey(
        "tracking.Shipment", on_delete=models.CASCADE, null=True, blank=True, related_name="scans"
    )
    scan_type = models.CharField(max_length=20, choices=ScanType.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    location = gis.PointField(srid=4326, null=True, blank=True)
    hub = models.ForeignKey(
        "tracking.Hub", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason_code = models.CharField(max_length=32, blank=True)
    # What a carrier's own system said, kept as sent (its adapter maps it onto scan_type and
    # reason_code): evidence, and the way back when a mapping turns out wrong.
    carrier_status_code = models.CharField(max_length=64, blank=True)
    carrier_reason_code = models.CharField(max_length=64, blank=True)
    note = models.CharField(max_length=500, blank=True)
    result = models.CharField(max_length=20, choices=ScanResult.choices)
    detail = models.CharField(max_length=300, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"], name="scan_idempotency_key"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "shipment", "occurred_at"]),
            models.Index(fields=["organization", "barcode"]),
            # The SLA roll-up of a day reads that day's scans (carriers/sla/rollup).
            models.Index(fields=["organization", "occurred_at"]),
        ]
