"""Webhook subscriptions and their deliveries (docs/WEBHOOKS.md).

`WebhookEndpoint` is a subscription: where to POST, which event types, an optional carrier
filter and its signing secret (encrypted: Standard Webhooks signs with the raw secret, so it
cannot be hashed). `WebhookDelivery` is one event for one endpoint (created by the fan-out,
moved by the dispatcher); `WebhookAttempt` is one HTTP request of it, the delivery log.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from control_tower.tenancy.models import TenantModel
from webhooks import endpoint_cache


class WebhookEndpoint(TenantModel):
    name = models.CharField(max_length=100)
    url = models.CharField(max_length=2000, help_text="http(s) URL the events are POSTed to.")
    event_types = ArrayField(
        models.CharField(max_length=100),
        help_text='Catalog names ("shipment.status_changed"), namespaces ("alert.*") or "*".',
    )
    carrier = models.ForeignKey(
        "carriers.Carrier",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only events of this carrier (forced for carrier users and carrier keys).",
    )
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    # Fernet tokens (webhooks/secrets.py). The previous secret keeps signing next to the new
    # one until `previous_secret_until` (rotation overlap).
    secret_encrypted = models.TextField(editable=False)
    previous_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    previous_secret_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # Auto-disable bookkeeping: failed attempts since the last success, and since when.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        endpoint_cache.forget(self.organization_id)

    def delete(self, *args, **kwargs):
        organization_id = self.organization_id
        result = super().delete(*args, **kwargs)
        endpoint_cache.forget(organization_id)
        return result


class WebhookSettings(TenantModel):
    """The organization's webhook policy: which private destinations it may send to."""

    allowed_private_hosts = ArrayField(
        models.CharField(max_length=255),
        default=list,
        blank=True,
        help_text='Host names, addresses or CIDRs ("localhost", "127.0.0.1", "10.0.0.0/8") '
        "that endpoints may use even though they are private, loopback or link-local.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "webhook settings"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="webhook_settings_one_per_org")
        ]

    def __str__(self) -> str:
        return "Webhook settings"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Failed, retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    DEAD = "dead", "Dead (retries exhausted)"


OPEN_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
OPEN = Q(status__in=OPEN_STATUSES)


class WebhookDelivery(TenantModel):
    """One event for one endpoint. The primary key is the dispatcher's order; deliveries of one
    endpoint and ordering key (the event's aggregate) go out one after the other."""

    id = models.BigAutoField(primary_key=True)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=100)
    payload = models.JSONField(help_text="The event envelope, as sent.")
    ordering_key = models.CharField(max_length=160)
    # The `webhook-id` header: the same for every attempt and replay of this event to this
    # endpoint, so a receiver deduplicates on it.
    message_id = models.CharField(max_length=64)
    # 0 for the fan-out's delivery; replays are 1, 2 ...
    seq = models.PositiveIntegerField(default=0)
    replay_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replays"
    )
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantModel.Meta):
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id", "seq"], name="webhook_delivery_once"
            )
        ]
        indexes = [
            # The dispatcher's queue.
            models.Index(fields=["next_attempt_at", "id"], condition=OPEN, name="webhook_due"),
            # "Is an earlier delivery of this endpoint and key still open?"
            models.Index(
                fields=["endpoint", "ordering_key", "id"], condition=OPEN, name="webhook_open_key"
            ),
            models.Index(fields=["endpoint", "created_at"], name="webhook_endpoint_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(TenantModel):
    """One HTTP request of a delivery: what was sent (never the secret) and what came back."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    request_url = models.CharField(max_length=2000)
    request_headers = models.JSONField(default=dict)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict)
    response_body = models.TextField(blank=True, default="", help_text="At most 2 KB.")
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta(TenantModel.Meta):
        ordering = ["delivery", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
