"""Alerts: a condition on a stop, route, vehicle, device or shipment that needs a person.

A rule (exceptions/rules/) raises an alert through `exceptions.services.alert_raise` and clears
it with `alert_clear`; people acknowledge, assign, snooze and resolve it through the API. Every
change of state is an `AlertTransition` row and an `alert.*` event. docs/EXCEPTIONS.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from control_tower.tenancy.models import TenantModel

# The alert.* event types join the catalog wherever the models load (web, workers, relay).
from exceptions import events as _alert_events  # noqa: F401


class AlertKind(models.TextChoices):
    PREDICTED_LATE = "predicted_late", "Predicted late"
    STALLED = "stalled", "Stalled"
    SIGNAL_LOST = "signal_lost", "Signal lost"
    OFF_ROUTE = "off_route", "Off route"
    LONG_DWELL = "long_dwell", "Long dwell"
    FAILED_ATTEMPT = "failed_attempt", "Failed attempt"
    POD_FAR = "pod_far", "Proof of delivery far from the address"
    ROUTE_NOT_STARTED = "route_not_started", "Route not started"
    BATTERY_LOW = "battery_low", "Battery low"
    INCIDENT = "incident", "Incident"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


# Ordered from least to most severe: "severity only goes up" and escalation read this.
SEVERITY_ORDER = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


def severity_rank(value: str) -> int:
    return SEVERITY_ORDER.index(value)


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ASSIGNED = "assigned", "Assigned"
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"


UNRESOLVED_STATES = [
    AlertState.OPEN,
    AlertState.ACKNOWLEDGED,
    AlertState.ASSIGNED,
    AlertState.SNOOZED,
]


class SubjectType(models.TextChoices):
    STOP = "stop", "Stop"
    ROUTE = "route", "Route"
    VEHICLE = "vehicle", "Vehicle"
    DEVICE = "device", "Device"
    SHIPMENT = "shipment", "Shipment"


class ResolutionCode(models.TextChoices):
    """Why a person closed an alert (a fixed list, so reports can count them)."""

    FIXED = "fixed", "Fixed"
    CUSTOMER_CONTACTED = "customer_contacted", "Customer contacted"
    DRIVER_CONTACTED = "driver_contacted", "Driver contacted"
    REROUTED = "rerouted", "Rerouted or reassigned"
    FALSE_POSITIVE = "false_positive", "False positive"
    NO_ACTION_NEEDED = "no_action_needed", "No action needed"
    DUPLICATE = "duplicate", "Duplicate"
    # Set by `alert_clear` when the condition ended by itself.
    CONDITION_CLEARED = "condition_cleared", "Condition cleared"


class Alert(TenantModel):
    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    subject_type = models.CharField(max_length=16, choices=SubjectType.choices)
    subject_id = models.CharField(max_length=64)
    route = models.ForeignKey(
        "tracking.Route", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    stop = models.ForeignKey(
        "tracking.Stop", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    vehicle = models.ForeignKey(
        "carriers.Vehicle", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    shipment = models.ForeignKey(
        "tracking.Shipment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
    )
    # Kept on the alert (not derived through the route) so carrier scope is one indexed column.
    carrier = models.ForeignKey(
        "carriers.Carrier", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    title = models.CharField(max_length=300)
    detail = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(help_text="When the condition began, from the data.")
    raised_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolution_code = models.CharField(
        max_length=32, choices=ResolutionCode.choices, blank=True, default=""
    )
    resolution_note = models.TextField(blank=True, default="")
    auto_resolved = models.BooleanField(default=False)

    class Meta(TenantModel.Meta):
        ordering = ["-raised_at", "-id"]
        constraints = [
            # A rule that fires on every sweep must update its alert, never pile up copies.
            models.UniqueConstraint(
                fields=["organization", "kind", "subject_type", "subject_id"],
                condition=~Q(state="resolved"),
                name="alert_one_unresolved_per_subject",
            ),
            models.CheckConstraint(
                condition=Q(state="resolved", resolved_at__isnull=False)
                | (~Q(state="resolved") & Q(resolved_at__isnull=True)),
                name="alert_resolved_at_iff_resolved",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "state", "-raised_at"], name="alert_org_state_raised"
            ),
            models.Index(
                fields=["organization", "carrier", "-raised_at"], name="alert_org_carrier_raised"
            ),
            models.Index(
                fields=["state", "raised_at"],
                condition=Q(state="open"),
                name="alert_open_for_escalation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.subject_type} {self.subject_id} ({self.state})"

    @property
    def is_resolved(self) -> bool:
        return self.state == AlertState.RESOLVED


class AlertTransition(TenantModel):
    """One change of an alert's state (or severity): who, when, from what to what."""

    id = models.BigAutoField(primary_key=True)
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=16, choices=AlertState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=AlertState.choices)
    actor = models.CharField(max_length=200, help_text="Who: a person, an API key or a rule.")
    at = models.DateTimeField(default=timezone.now)
    details = models.JSONField(default=dict, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_state or '-'} → {self.to_state} by {self.actor}"


class AlertThresholds(TenantModel):
    """Rule thresholds: the organization's row (carrier empty) or a carrier's override. An empty
    field falls back to the organization's row, then to `exceptions.thresholds.DEFAULTS`."""

    id = models.BigAutoField(primary_key=True)
    carrier = models.ForeignKey(
        "carriers.Carrier",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alert_thresholds",
    )
    predicted_late_p50 = models.BooleanField(
        null=True, blank=True, help_text="Raise 'predicted late' on the median ETA (else p90)."
    )
    stalled_min = models.PositiveIntegerField(null=True, blank=True)
    stalled_radius_m = models.PositiveIntegerField(null=True, blank=True)
    signal_lost_min = models.PositiveIntegerField(null=True, blank=True)
    off_route_m = models.PositiveIntegerField(null=True, blank=True)
    off_route_s = models.PositiveIntegerField(null=True, blank=True)
    long_dwell_factor = models.FloatField(
        null=True, blank=True, help_text="Long dwell: the learned P90 dwell times this."
    )
    long_dwell_margin_min = models.PositiveIntegerField(
        null=True, blank=True, help_text="Long dwell: at least this many minutes over the P90."
    )
    pod_far_m = models.PositiveIntegerField(null=True, blank=True)
    route_not_started_min = models.PositiveIntegerField(null=True, blank=True)
    battery_low_pct = models.PositiveSmallIntegerField(null=True, blank=True)
    escalate_after_min = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "alert thresholds"
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(carrier__isnull=True),
                name="alert_thresholds_one_per_org",
            ),
            models.UniqueConstraint(
                fields=["organization", "carrier"],
                condition=Q(carrier__isnull=False),
                name="alert_thresholds_one_per_carrier",
            ),
        ]

    def __str__(self) -> str:
        return f"Thresholds ({self.carrier or 'organization'})"


THRESHOLD_FIELDS = [
    "predicted_late_p50",
    "stalled_min",
    "stalled_radius_m",
    "signal_lost_min",
    "off_route_m",
    "off_route_s",
    "long_dwell_factor",
    "long_dwell_margin_min",
    "pod_far_m",
    "route_not_started_min",
    "battery_low_pct",
    "escalate_after_min",
]
