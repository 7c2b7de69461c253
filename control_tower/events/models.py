"""The durable outbox: one row per durable event, written in the emitting transaction.

System infrastructure: rows belong to an organization (tenant column, scoped manager as for
every tenant model), and only the relay reads across organizations, inside
`dangerously_all_organizations()`.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from control_tower.events.catalog import Event
from control_tower.tenancy.models import TenantModel

UNDELIVERED = Q(delivered_at__isnull=True, dead_at__isnull=True)


class OutboxEvent(TenantModel):
    """An event waiting for (or done with) its durable subscribers. The primary key is the
    relay's order; `event_id` is what consumers use to recognise a re-delivery."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True, editable=False)
    type = models.CharField(max_length=100)
    version = models.PositiveSmallIntegerField()
    # A plain column, not a foreign key: an event outlives the carrier row it names.
    carrier_id = models.BigIntegerField(null=True, blank=True)
    aggregate_type = models.CharField(max_length=40)
    aggregate_id = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    payload = models.JSONField()
    backfill = models.BooleanField(
        default=False, help_text="Recorded after the fact (history import): not actionable now."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta(TenantModel.Meta):
        indexes = [
            # The relay's queue: what is still to deliver, in order.
            models.Index(fields=["id"], condition=UNDELIVERED, name="outbox_undelivered"),
            # "Is an earlier event of this aggregate still pending?"
            models.Index(
                fields=["organization", "aggregate_type", "aggregate_id", "id"],
                condition=UNDELIVERED,
                name="outbox_undelivered_aggregate",
            ),
            # Pruning by age.
            models.Index(
                fields=["delivered_at"],
                condition=Q(delivered_at__isnull=False),
                name="outbox_delivered_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.aggregate_type}:{self.aggregate_id} ({self.event_id})"

    # The envelope's fields, stored as they are (the event's id is `event_id` here).
    ENVELOPE = (
        "organization_id",
        "type",
        "version",
        "carrier_id",
        "aggregate_type",
        "aggregate_id",
        "occurred_at",
        "payload",
        "backfill",
    )

    @classmethod
    def from_event(cls, event: Event) -> OutboxEvent:
        return cls(event_id=event.id, **{name: getattr(event, name) for name in cls.ENVELOPE})

    def as_event(self) -> Event:
        return Event(id=self.event_id, **{name: getattr(self, name) for name in self.ENVELOPE})

    @property
    def state(self) -> str:
        if self.delivered_at is not None:
            return "delivered"
        if self.dead_at is not None:
            return "dead"
        return "retrying" if self.attempts else "pending"


class OutboxReceipt(models.Model):
    """One durable subscriber has handled one event (written in the handler's transaction),
    so a re-delivered event is not handled twice by the same subscriber."""

    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="receipts")
    subscriber = models.CharField(max_length=100)
    handled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "subscriber"], name="outbox_receipt_once")
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} handled {self.event_id}"
