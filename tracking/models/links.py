"""Tracking links for recipients, what recipients do through them, and their ratings.

docs/TRACKING_LINKS.md describes the life cycle and the security properties.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from control_tower.tenancy.models import TenantModel


class LinkSource(models.TextChoices):
    """Why a link was issued (the audit question "where did this URL come from?")."""

    CREATED = "created", "Shipment created"
    REISSUED = "reissued", "Re-issued through the API"
    LOOKUP = "lookup", "Recipient looked the shipment up"
    DEMO = "demo", "Demo"
    NOTIFICATION = "notification", "Notification messages"


class TrackingLink(TenantModel):
    """One URL a recipient can open. The token is the credential: only its SHA-256 is stored,
    so neither a database dump nor the admin can rebuild a working URL.

    A link lives until it is revoked, or until `expires_at`: that stays empty while the
    shipment is moving and is set to final status + `Organization.tracking_link_days` when it
    reaches a final status (tracking/services/tracking_links.py, called by the status
    machine).
    """

    shipment = models.ForeignKey(
        "tracking.Shipment", on_delete=models.CASCADE, related_name="tracking_links"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    source = models.CharField(max_length=12, choices=LinkSource.choices, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.CharField(max_length=200, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.CharField(max_length=200, blank=True, editable=False)
    last_opened_at = models.DateTimeField(null=True, blank=True, editable=False)
    language = models.CharField(
        max_length=8, blank=True, help_text="Empty: the recipient's browser language."
    )
    # Links issued for notification messages only: the raw token is derived from this nonce
    # and a key derived from SECRET_KEY, so every message can carry the URL without storing it
    # (tracking/services/tracking_links.py, `notification_link_url`).
    nonce = models.CharField(max_length=32, null=True, blank=True, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["organization", "shipment", "-created_at"])]

    def __str__(self) -> str:
        return f"link {self.pk} of shipment {self.shipment_id}"

    @staticmethod
    def expiry_after_final(final_at, organization):
        """When links of a shipment that reached a final status at `final_at` stop working:
        the one spelling of the rule (the status machine and `link_issue` both use it)."""
        return final_at + timedelta(days=organization.tracking_link_days)

    def is_usable(self, *, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class CustomerActionKind(models.TextChoices):
    INSTRUCTIONS = "instructions", "Delivery instructions set"
    RESCHEDULE = "reschedule", "Delivery rescheduled"
    NOT_HOME = "not_home", "Not home"
    RATING = "rating", "Delivery rated"


class CustomerAction(TenantModel):
    """What a recipient did through a tracking link: the audit row of each customer action,
    and the record that makes it idempotent (one row per organization and form key).

    Why a separate trail and not the chain of custody: the custody chain is the evidence of
    who held the parcel; it is append-only at the database level (a trigger refuses UPDATE
    and DELETE) and hashes its content for third parties to verify. What recipients type
    (gate codes, phone-like comments) is personal data that must stay erasable, and most of
    these actions do not move the parcel. So the custody chain gets an entry only when the
    parcel's plan changes (a reschedule takes it off a route through the route services,
    which append the "taken_off_route" custody entry), and this table keeps the rest:
    who (the link), what, when, the values before and after.
    """

    shipment = models.ForeignKey(
        "tracking.Shipment", on_delete=models.CASCADE, related_name="customer_actions"
    )
    link = models.ForeignKey(
        TrackingLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="actions"
    )
    kind = models.CharField(max_length=16, choices=CustomerActionKind.choices)
    key = models.CharField(max_length=64, help_text="The form's idempotency key.")
    occurred_at = models.DateTimeField(default=timezone.now)
    details = models.JSONField(default=dict, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "kind", "key"], name="customer_action_key_once"
            ),
        ]
        indexes = [models.Index(fields=["organization", "shipment", "-occurred_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.shipment_id})"


class DeliveryRating(TenantModel):
    """The recipient's 1–5 stars and comment on a delivered shipment, once per shipment.

    Carrier and driver are copied from the delivery (the route that delivered it) so the SLA
    reports group ratings by who delivered, even if the shipment's carrier field changes.
    """

    shipment = models.OneToOneField(
        "tracking.Shipment", on_delete=models.CASCADE, related_name="rating"
    )
    carrier = models.ForeignKey(
        "carriers.Carrier",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="delivery_ratings",
    )
    driver = models.ForeignKey(
        "carriers.Driver",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="delivery_ratings",
    )
    stars = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(blank=True, max_length=1000)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stars__gte=1) & Q(stars__lte=5), name="delivery_rating_stars_1_5"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "carrier", "created_at"]),
            models.Index(fields=["organization", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.stars}★ for shipment {self.shipment_id}"
