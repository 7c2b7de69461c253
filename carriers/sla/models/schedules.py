"""The scheduled weekly scorecard e-mail."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from control_tower.tenancy.models import TenantModel


class ScorecardEmail(TenantModel):
    """A weekly e-mail of the carrier scorecard to chosen members of the organization. Each
    recipient gets what their role may see (a carrier user: their own carrier only)."""

    name = models.CharField(max_length=100, default="Weekly carrier scorecard")
    recipients = models.ManyToManyField("control_tower.Membership", related_name="+")
    weekday = models.PositiveSmallIntegerField(
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(6)],
        help_text="0 = Monday … 6 = Sunday, in the organization's time zone.",
    )
    hour = models.PositiveSmallIntegerField(
        default=7,
        validators=[MaxValueValidator(23)],
        help_text="Local hour of the day it is sent.",
    )
    period_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(92)],
        help_text="The scorecard covers this many service days before the sending day.",
    )
    carriers = models.ManyToManyField(
        "carriers.Carrier",
        blank=True,
        related_name="+",
        help_text="Only these carriers (empty: all the recipient may see).",
    )
    is_active = models.BooleanField(default=True)
    last_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name
