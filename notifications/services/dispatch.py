"""The safety net behind the send tasks (beat runs `dispatch_due` every 5 s): messages held
until a time that has come, retries whose time has come, queued messages whose send task was
lost (the broker was down at commit), and messages a dead worker left in `sending`."""

from __future__ import annotations

import time
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from control_tower.models import Organization
from control_tower.tenancy.enqueue import enqueue_on_commit
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from notifications.models import Notification, Status
from notifications.services.delivery import due, notifications_send, send_size
from notifications.services.messages import SEND_TASK, log_status

# A queued message whose send task was lost (broker down at commit) is picked up after this.
LOST_ENQUEUE_S = 30


def release_expired_leases(now) -> int:
    """Messages stuck in `sending` past their lease (a worker died) go back to the queue."""
    with dangerously_all_organizations():
        stuck = list(
            Notification.objects.filter(status=Status.SENDING, lease_until__lt=now).values_list(
                "pk", "organization_id"
            )
        )
        for pk, _org in stuck:
            with transaction.atomic():
                updated = Notification.objects.filter(
                    pk=pk, status=Status.SENDING, lease_until__lt=now
                ).update(
                    status=Status.QUEUED, lease_until=None, next_attempt_at=now, updated_at=now
                )
                if updated:
                    log_status(
                        Notification.objects.get(pk=pk), Status.QUEUED, "lease expired: re-queued"
                    )
    return len(stuck)


def due_messages(now, *, limit: int = 500) -> list[tuple[int, int]]:
    """(id, organization id) of messages to send now: held ones whose time came, retries
    whose time came, and queued ones older than LOST_ENQUEUE_S (their task may be lost)."""
    lost = now - timedelta(seconds=LOST_ENQUEUE_S)
    with dangerously_all_organizations():
        rows = (
            Notification.objects.filter(due(now))
            .filter(
                Q(status=Status.HELD) | Q(next_attempt_at__isnull=False) | Q(created_at__lte=lost)
            )
            .order_by("send_after", "id")
            .values_list("pk", "organization_id")[:limit]
        )
        return list(rows)


def dispatch_due(*, budget_s: float = 20.0) -> int:
    """The beat task's work: release expired leases, then send due messages for at most
    `budget_s` seconds. Returns how many were attempted."""
    started = time.monotonic()
    now = timezone.now()
    release_expired_leases(now)
    attempted = 0
    # A disabled organization's messages wait (they go if it is enabled again, unless stale).
    due = due_messages(now)
    wanted = {organization_id for _pk, organization_id in due}
    active = {o.pk: o for o in Organization.objects.filter(is_active=True, pk__in=wanted)}
    for organization_id, ids in _batches(due, size=send_size()):
        if time.monotonic() - started > budget_s:
            break
        organization = active.get(organization_id)
        if organization is None:
            continue
        with organization_scope(organization):
            notifications_send(notification_ids=ids)
        attempted += len(ids)
    return attempted


def _batches(due: list[tuple[int, int]], *, size: int) -> list[tuple[int, list[int]]]:
    """(organization id, up to `size` message ids) in the order of `due` per organization."""
    per_organization: dict[int, list[int]] = {}
    for pk, organization_id in due:
        per_organization.setdefault(organization_id, []).append(pk)
    return [
        (organization_id, ids[start : start + size])
        for organization_id, ids in per_organization.items()
        for start in range(0, len(ids), size)
    ]


def notification_retry_now(*, message: Notification) -> bool:
    """Put a failed message back in the queue (admin "retry now"): attempts start again."""
    with transaction.atomic():
        updated = Notification.objects.filter(pk=message.pk, status=Status.FAILED).update(
            status=Status.QUEUED,
            attempts=0,
            next_attempt_at=None,
            send_after=timezone.now(),
            updated_at=timezone.now(),
        )
        if updated:
            log_status(message, Status.QUEUED, "retry requested")
            enqueue_on_commit(
                SEND_TASK,
                notification_id=message.pk,
                organization_id=message.organization_id,
            )
    return bool(updated)
