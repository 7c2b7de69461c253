"""Notifications to recipients and staff (docs/NOTIFICATIONS.md).

An organization's policy (`NotificationSettings`, `TriggerSetting`, `NotificationTemplate`),
what recipients said about being contacted (`ContactPreference`), and every message with its
history (`Notification`, `NotificationLog`).
"""

from __future__ import annotations

import uuid
from datetime import time

from django.db import models
from django.db.models import Q
from django.utils import timezone

from control_tower.tenancy.models import TenantModel


class Channel(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"


class Trigger(models.TextChoices):
    SHIPMENT_CREATED = "shipment_created", "Shipment created"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    DRIVER_NEARBY = "driver_nearby", "Driver nearby"
    ETA_WINDOW_MOVED = "eta_window_moved", "ETA window moved"
    DELIVERED = "delivered", "Delivered"
    ATTEMPT_FAILED = "attempt_failed", "Attempt failed"
    RESCHEDULED = "rescheduled", "Rescheduled"
    EXCEPTION_RAISED = "exception_raised", "Exception on the shipment"
    FEEDBACK_REQUEST = "feedback_request", "Feedback request"
    STAFF_ALERT_ESCALATED = "staff_alert_escalated", "Escalated alert (staff)"


class Audience(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    STAFF = "staff", "Staff"


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    HELD = "held", "Held (quiet hours or scheduled)"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    BOUNCED = "bounced", "Bounced"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Suppressed"


# Statuses a message can still leave by being sent (dispatch_due picks these up).
PENDING_STATUSES = (Status.QUEUED, Status.HELD, Status.SENDING)
# Provider reports only ever move a message forward along this order (never back).
PROVIDER_RANK = {
    Status.SENDING: 0,
    Status.SENT: 1,
    Status.FAILED: 2,
    Status.BOUNCED: 2,
    Status.DELIVERED: 3,
}


class SuppressionReason(models.TextChoices):
    OPTED_OUT = "opted_out", "Recipient opted out"
    NO_CONSENT = "no_consent", "No consent (opt-in required)"
    DUPLICATE = "duplicate", "Duplicate"
    RATE_LIMITED = "rate_limited", "Rate limited"
    STALE = "stale", "Too old to be useful"
    INVALID_ADDRESS = "invalid_address", "Invalid address"
    QUIET_HOURS_EXPIRED = "quiet_hours_expired", "Expired during quiet hours"
    DISABLED = "disabled", "Trigger disabled"


class NotificationSettings(TenantModel):
    """The organization's notification policy: one row, created with defaults on first use
    (`notifications.settings_for`). Quiet hours are read in the organization's time zone:
    recipients are local to the organization's deliveries and shipments carry no zone."""

    sender_name = models.CharField(max_length=100, blank=True, help_text="Empty: org name.")
    from_email = models.EmailField(blank=True, help_text="Empty: DEFAULT_FROM_EMAIL.")
    reply_to = models.EmailField(blank=True, help_text="Empty: the support e-mail.")
    sms_sender = models.CharField(
        max_length=20, blank=True, help_text="E.164 number or sender id; empty: the default."
    )
    quiet_hours_start = models.TimeField(default=time(21, 0))
    quiet_hours_end = models.TimeField(default=time(8, 0))
    rate_limit_per_hour = models.PositiveSmallIntegerField(default=5)
    rate_limit_per_day = models.PositiveSmallIntegerField(default=12)
    email_requires_opt_in = models.BooleanField(default=False)
    sms_requires_opt_in = models.BooleanField(default=False)
    max_age_min = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=(
            "A cap on every trigger's max_age_min: no message for an event older than this. "
            "Empty: each trigger's own limit."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "notification settings"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="notification_settings_once")
        ]

    def __str__(self) -> str:
        return f"Notification settings of {self.organization_id}"


class TriggerSetting(TenantModel):
    """One trigger of one organization: on/off, channels and parameters. Missing rows and
    missing parameters fall back to `notifications.triggers.defaults.TRIGGER_DEFAULTS`."""

    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    enabled = models.BooleanField(default=True)
    channels = models.JSONField(default=list, blank=True, help_text='Subset of ["email","sms"].')
    parameters = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["trigger"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "trigger"], name="trigger_setting_once")
        ]

    def __str__(self) -> str:
        return f"{self.trigger} ({'on' if self.enabled else 'off'})"


class NotificationTemplate(TenantModel):
    """An organization's override of a shipped template (templates/notifications/)."""

    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    language = models.CharField(max_length=8, default="es")
    subject = models.CharField(max_length=300, blank=True)
    text = models.TextField(help_text="The SMS, or the e-mail's text part.")
    html = models.TextField(blank=True, help_text="The e-mail's HTML body (inside the layout).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["trigger", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "trigger", "channel", "language"],
                name="notification_template_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.trigger}/{self.channel}.{self.language}"


class PreferenceState(models.TextChoices):
    OPTED_IN = "opted_in", "Opted in"
    OPTED_OUT = "opted_out", "Opted out"


class PreferenceSource(models.TextChoices):
    UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
    SMS_STOP = "sms_stop", "SMS STOP"
    SMS_START = "sms_start", "SMS START"
    API = "api", "API"
    ADMIN = "admin", "Admin"


class ContactPreference(TenantModel):
    """What one recipient (a normalized address on a channel) said about being contacted."""

    channel = models.CharField(max_length=8, choices=Channel.choices)
    address = models.CharField(max_length=254, help_text="E.164 or a normalized e-mail.")
    state = models.CharField(max_length=12, choices=PreferenceState.choices)
    source = models.CharField(max_length=20, choices=PreferenceSource.choices)
    at = models.DateTimeField(default=timezone.now)

    class Meta(TenantModel.Meta):
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "channel", "address"], name="contact_preference_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address} {self.state}"


class Notification(TenantModel):
    """One message to one recipient on one channel, and where it stands."""

    id = models.BigAutoField(primary_key=True)
    shipment = models.ForeignKey(
        "tracking.Shipment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    alert_id = models.BigIntegerField(null=True, blank=True)
    # Kept on the row (from the shipment or the alert) so the carrier scope is one column.
    carrier = models.ForeignKey(
        "carriers.Carrier", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=32, choices=Trigger.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    audience = models.CharField(max_length=10, choices=Audience.choices)
    address = models.CharField(max_length=254, blank=True)
    language = models.CharField(max_length=8, default="es")
    dedup_key = models.CharField(max_length=200)
    source_event_id = models.UUIDField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=24, choices=SuppressionReason.choices, blank=True)
    send_after = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    context = models.JSONField(default=dict, blank=True)
    subject_preview = models.CharField(max_length=300, blank=True)
    body_preview = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dedup_key"], name="notification_dedup_once"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "-created_at"], name="notif_org_created"),
            models.Index(fields=["organization", "shipment"], name="notif_org_shipment"),
            models.Index(
                fields=["organization", "channel", "address", "created_at"],
                name="notif_recipient_recent",
            ),
            models.Index(
                fields=["status", "send_after"],
                condition=Q(status__in=["queued", "held", "sending"]),
                name="notif_pending_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trigger} {self.channel} to {self.address or '-'} ({self.status})"


class NotificationLog(TenantModel):
    """One change of a message's status or one attempt: the delivery log."""

    id = models.BigAutoField(primary_key=True)
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=Status.choices)
    detail = models.CharField(max_length=500, blank=True)
    provider_code = models.CharField(max_length=40, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.status} at {self.at:%H:%M:%S}"
