"""Provider delivery reports (status callbacks) applied to their messages."""

from __future__ import annotations

from django.db import transaction

from control_tower.tenancy.scope import dangerously_all_organizations
from notifications.channels.base import StatusReport
from notifications.models import PROVIDER_RANK, Notification, Status
from notifications.services.messages import log_status

REPORTED = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "failed": Status.FAILED,
    "undelivered": Status.FAILED,
    "bounced": Status.BOUNCED,
}


def record_provider_status(provider: str, report: StatusReport) -> Notification | None:
    """Apply a provider's delivery report to its message (found by idempotency key, else by
    provider message id). Idempotent; only moves forward (delivered is never undone, a late
    "sent" after "delivered" changes nothing). Returns the message, or None if unknown.

    Runs without an organization in scope: the key (a random uuid) or the provider's id
    names the message, like a tracking token names its link."""
    status = REPORTED.get(report.status)
    with dangerously_all_organizations(), transaction.atomic():
        candidates = Notification.objects.select_for_update()
        message = None
        if report.idempotency_key:
            try:
                message = candidates.filter(idempotency_key=report.idempotency_key).first()
            except Exception:  # noqa: BLE001 - not a uuid
                message = None
        if message is None and report.provider_message_id:
            message = candidates.filter(
                provider=provider, provider_message_id=report.provider_message_id
            ).first()
        if message is None or status is None:
            return message
        current = PROVIDER_RANK.get(message.status)
        if current is None or PROVIDER_RANK[status] <= current:
            return message
        message.status = status
        update = ["status", "updated_at"]
        if report.provider_message_id and not message.provider_message_id:
            message.provider_message_id = report.provider_message_id[:200]
            update.append("provider_message_id")
        message.save(update_fields=update)
        log_status(message, status, report.detail or f"reported by {provider}", report.error_code)
        return message
