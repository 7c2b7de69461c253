"""The chain of custody: an append-only, hash-chained log per shipment."""

from __future__ import annotations

from django.contrib.gis.db import models as gis
from django.db import models
from django.utils import timezone

from control_tower.tenancy.models import TenantModel


class CustodyEntry(TenantModel):
    """One link: `hash = sha256(prev_hash + canonical JSON of the content)`. UPDATE and DELETE
    are refused by a database trigger."""

    shipment = models.ForeignKey(
        "tracking.Shipment", on_delete=models.DO_NOTHING, related_name="custody"
    )
    sequence = models.PositiveIntegerField()
    kind = models.CharField(max_length=20)  # status, scan, pod, handoff, route
    actor = models.CharField(max_length=200)
    custodian = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now)
    location = gis.PointField(srid=4326, null=True, blank=True)
    evidence = models.JSONField(default=dict)  # name -> sha256 of files (photos, signature)
    details = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta(TenantModel.Meta):
        ordering = ["shipment", "sequence"]
        verbose_name_plural = "custody entries"
        constraints = [
            models.UniqueConstraint(
                fields=["shipment", "sequence"], name="custody_sequence_per_shipment"
            ),
        ]
        indexes = [models.Index(fields=["organization", "shipment", "sequence"])]
