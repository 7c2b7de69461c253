"""Electronic proof of delivery and its files."""

from __future__ import annotations

from django.contrib.gis.db import models as gis
from django.db import models
from django.utils import timezone

from control_tower.tenancy.models import TenantModel
from tracking.models.plan import FailureReason


class PodOutcome(models.TextChoices):
    """What the evidence proves: a delivery, or a failed attempt at the door (the photo of a
    closed gate is the driver's proof that they were there)."""

    DELIVERED = "delivered", "Delivered"
    ATTEMPT_FAILED = "attempt_failed", "Failed attempt"


class SafePlace(models.TextChoices):
    """Where a delivered parcel was left, as the driver app offers it."""

    RECIPIENT = "recipient", "Handed to the recipient"
    HOUSEHOLD = "household", "Handed to someone at the address"
    NEIGHBOUR = "neighbour", "Left with a neighbour"
    RECEPTION = "reception", "Reception or concierge"
    FRONT_DOOR = "front_door", "At the front door"
    MAILBOX = "mailbox", "In the mailbox or parcel locker"
    BACK_DOOR = "back_door", "At the back door or garage"
    OTHER = "other", "Somewhere else (see the note)"


class ProofOfDelivery(TenantModel):
    idempotency_key = models.CharField(max_length=200)
    shipment = models.ForeignKey("tracking.Shipment", on_delete=models.CASCADE, related_name="pods")
    stop = models.ForeignKey(
        "tracking.Stop", on_delete=models.SET_NULL, null=True, blank=True, related_name="pods"
    )
    device = models.ForeignKey(
        "carriers.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recipient_name = models.CharField(max_length=200, blank=True)
    pin_verified = models.BooleanField(null=True, help_text="None when no PIN was required.")
    location = gis.PointField(srid=4326, null=True, blank=True)
    captured_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    distance_m = models.FloatField(null=True, help_text="From the delivery address.")
    outside_geofence = models.BooleanField(default=False)
    note = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(
        max_length=16, choices=PodOutcome.choices, default=PodOutcome.DELIVERED
    )
    failure_reason = models.CharField(
        max_length=32, choices=FailureReason.choices, blank=True, help_text="Failed attempts."
    )
    left_at = models.CharField(
        max_length=16, choices=SafePlace.choices, blank=True, help_text="Where it was left."
    )

    class Meta(TenantModel.Meta):
        ordering = ["-captured_at"]
        verbose_name = "proof of delivery"
        verbose_name_plural = "proofs of delivery"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "idempotency_key"], name="pod_idempotency_key"
            ),
        ]
        indexes = [models.Index(fields=["organization", "shipment"])]


class PodFileKind(models.TextChoices):
    PHOTO = "photo", "Photo"
    SIGNATURE = "signature", "Signature"


class PodFile(TenantModel):
    """A re-encoded image (EXIF stripped) stored under a random name; served only through
    short-lived signed URLs."""

    pod = models.ForeignKey(ProofOfDelivery, on_delete=models.CASCADE, related_name="files")
    kind = models.CharField(max_length=12, choices=PodFileKind.choices)
    storage_name = models.CharField(max_length=200, unique=True)
    content_type = models.CharField(max_length=40)
    size_bytes = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)

    class Meta(TenantModel.Meta):
        ordering = ["pod", "kind", "id"]
