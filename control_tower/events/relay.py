"""The outbox relay: hands committed durable events to every durable subscriber.

Guarantees (docs/EVENTS.md):
- at least once: a row is marked delivered only after every subscriber has handled it;
- once per subscriber: a handler's writes commit together with its receipt (event,
  subscriber), and a re-delivered event skips the subscribers that have one, so an event
  retried after one subscriber failed is not handled twice by the others;
- in order per aggregate: an event is taken only when no earlier event of its aggregate is
  still pending (claimed by another worker, waiting for a retry, or failed in this batch);
  other aggregates go on;
- retries with exponential backoff; after EVENTS_MAX_ATTEMPTS the event is dead (visible in
  the admin) and no longer holds its aggregate back.

Claims are leases: rows are taken with `FOR UPDATE SKIP LOCKED` and stamped `leased_until`,
then delivered in chunks of EVENTS_RELAY_CHUNK, one transaction per chunk and a savepoint per
handler (see `deliver_chunk`). A worker that dies leaves its lease to expire; another worker
takes the rows over.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from control_tower.events import settings as event_settings
from control_tower.events.models import UNDELIVERED, OutboxEvent, OutboxReceipt
from control_tower.events.registry import subscribers_for
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope

logger = logging.getLogger(__name__)

# Due, unclaimed rows in id order; rows another worker holds are skipped, not waited for.
_CLAIM = """
SELECT id, organization_id, aggregate_type, aggregate_id
FROM control_tower_outboxevent
WHERE delivered_at IS NULL AND dead_at IS NULL
  AND (leased_until IS NULL OR leased_until < %(now)s)
  AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

# For each claimed aggregate, its oldest pending event outside the claim (held by another
# worker, waiting for its retry, or not yet visible to the claim): later ones must wait.
_BLOCKERS = """
SELECT e.organization_id, e.aggregate_type, e.aggregate_id, MIN(e.id)
FROM control_tower_outboxevent e
JOIN unnest(%(orgs)s::bigint[], %(types)s::text[], %(ids)s::text[]) AS k(o, t, a)
  ON e.organization_id = k.o AND e.aggregate_type = k.t AND e.aggregate_id = k.a
WHERE e.delivered_at IS NULL AND e.dead_at IS NULL AND NOT (e.id = ANY(%(claimed)s))
GROUP BY 1, 2, 3
"""


def backoff_s(attempts: int) -> float:
    base = event_settings.get("EVENTS_RETRY_BASE_S")
    return min(base * 2 ** max(attempts - 1, 0), event_settings.get("EVENTS_RETRY_MAX_S"))


def claim(limit: int | None = None) -> list[int]:
    """Lease the next deliverable rows (ids, in order). Rows whose aggregate has an earlier
    pending event outside the claim are left alone."""
    limit = limit or event_settings.get("EVENTS_RELAY_BATCH")
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM, {"now": now, "limit": limit})
        rows = cursor.fetchall()
        if not rows:
            return []
        keys = sorted({(o, t, a) for _, o, t, a in rows})
        cursor.execute(
            _BLOCKERS,
            {
                "orgs": [k[0] for k in keys],
                "types": [k[1] for k in keys],
                "ids": [k[2] for k in keys],
                "claimed": [row[0] for row in rows],
            },
        )
        first_blocker = {(o, t, a): oldest for o, t, a, oldest in cursor.fetchall()}
        taken = [
            pk
            for pk, o, t, a in rows
            if (blocker := first_blocker.get((o, t, a))) is None or pk < blocker
        ]
        if taken:
            lease = now + timedelta(seconds=event_settings.get("EVENTS_RELAY_LEASE_S"))
            OutboxEvent.dangerously_unscoped.filter(pk__in=taken).update(leased_until=lease)
    return taken


def deliver_chunk(ids: list[int], held_back: set[tuple]) -> int:
    """Deliver a chunk of claimed rows (in id order) in ONE transaction. Returns how many were
    delivered.

    Why one transaction: a commit per event and subscriber bounded the relay at ~300 events/s.
    Each handler still runs in its own SAVEPOINT, so a failing one rolls back only its own
    writes (and its `on_commit` callbacks); the chunk then records that event's failure and
    holds its aggregate back, and the rest of the chunk goes on. Handling, receipts and the
    delivered marks commit together, so a worker dying anywhere in the chunk leaves nothing
    half done: the leases expire and the rows are handled again from scratch.
    `held_back` (aggregate keys) is shared by the chunks of one batch and updated here.
    """
    with transaction.atomic():
        # Locked for the chunk: once a lease has run out, another worker's claim (SKIP LOCKED)
        # passes these rows over instead of handling them at the same time.
        rows = list(
            OutboxEvent.dangerously_unscoped.select_related("organization")
            .select_for_update(of=("self",))
            .filter(pk__in=ids)
            .order_by("pk")
        )
        now = timezone.now()  # after the lock (it may have waited for another worker)
        # Receipts exist only for events that failed (or were cut off) before: one query.
        done = set(
            OutboxReceipt.objects.filter(event_id__in=ids).values_list("event_id", "subscriber")
        )
        receipts: list[OutboxReceipt] = []
        delivered: list[int] = []
        given_back: list[int] = []
        for row in rows:
            key = (row.organization_id, row.aggregate_type, row.aggregate_id)
            if not _still_ours(row, now):
                held_back.add(key)  # someone else has it now: its later events wait too
                continue
            if key in held_back:
                given_back.append(row.pk)  # an earlier event of its aggregate failed
                continue
            handled, failure = _handle(row, done)
            receipts += handled
            if failure is None:
                delivered.append(row.pk)
            else:
                _failed(row, *failure)
                held_back.add(key)
        OutboxReceipt.objects.bulk_create(receipts)
        if given_back:
            OutboxEvent.dangerously_unscoped.filter(pk__in=given_back).update(leased_until=None)
        if delivered:
            _mark_delivered(delivered)
    return len(delivered)


def _still_ours(row: OutboxEvent, now) -> bool:
    """Undelivered and still under our lease (a stalled worker's rows may have been taken
    over, and delivered or failed, meanwhile)."""
    return (
        row.delivered_at is None
        and row.dead_at is None
        and row.leased_until is not None
        and row.leased_until > now
    )


def _handle(row: OutboxEvent, done: set[tuple]) -> tuple[list[OutboxReceipt], tuple | None]:
    """Run each subscriber that has not handled `row` yet, each in a savepoint. Returns the
    receipts to write and, when one failed, (subscriber name, exception): the subscribers
    after it are not run (they will be on the retry)."""
    event = row.as_event()
    receipts: list[OutboxReceipt] = []
    with organization_scope(row.organization):
        for subscriber in subscribers_for(row.type):
            if (row.pk, subscriber.name) in done or not subscriber.takes(event):
                continue
            try:
                with transaction.atomic():
                    subscriber.handler(event)
            except Exception as exc:  # noqa: BLE001 - any consumer failure is retried
                return receipts, (subscriber.name, exc)
            receipts.append(OutboxReceipt(event_id=row.pk, subscriber=subscriber.name))
    return receipts, None


def _mark_delivered(ids: list[int]) -> None:
    # In the chunk's transaction, with the receipts: one UPDATE for the chunk.
    OutboxEvent.dangerously_unscoped.filter(pk__in=ids).update(
        delivered_at=timezone.now(), leased_until=None, attempts=F("attempts") + 1, last_error=""
    )


def _failed(row: OutboxEvent, subscriber: str, exc: Exception) -> None:
    attempts = row.attempts + 1
    now = timezone.now()
    dead = attempts >= event_settings.get("EVENTS_MAX_ATTEMPTS")
    error = f"{subscriber}: {type(exc).__name__}: {exc}"[:2000]
    OutboxEvent.dangerously_unscoped.filter(pk=row.pk).update(
        attempts=attempts,
        last_error=error,
        leased_until=None,
        next_attempt_at=now + timedelta(seconds=backoff_s(attempts)),
        dead_at=now if dead else None,
    )
    log = logger.error if dead else logger.warning
    log(
        "event %s (%s) failed in %s, attempt %s%s",
        row.event_id,
        row.type,
        subscriber,
        attempts,
        " (dead)" if dead else "",
        exc_info=exc,
    )


def relay_batch(limit: int | None = None) -> tuple[int, int]:
    """Claim one batch and deliver it chunk by chunk. Returns (claimed, delivered)."""
    with dangerously_all_organizations():
        taken = claim(limit)
        if not taken:
            return 0, 0
        size = event_settings.get("EVENTS_RELAY_CHUNK")
        # Shared by the chunks: an aggregate whose event failed in an earlier chunk of this
        # batch must not have its later events delivered by a later chunk.
        held_back: set[tuple] = set()
        delivered = 0
        for start in range(0, len(taken), size):
            delivered += deliver_chunk(taken[start : start + size], held_back)
    return len(taken), delivered


def relay_pending(*, budget_s: float | None = None) -> int:
    """Deliver batches until none is left or the time budget is spent. Returns how many events
    were delivered."""
    return relay_within_budget(budget_s=budget_s)[0]


def relay_within_budget(*, budget_s: float | None = None) -> tuple[int, bool]:
    """Deliver batches for at most `budget_s` (EVENTS_RELAY_BUDGET_S). Returns (delivered,
    whether the budget ran out while rows were still being delivered)."""
    budget_s = event_settings.get("EVENTS_RELAY_BUDGET_S") if budget_s is None else budget_s
    deadline = time.monotonic() + budget_s
    total = 0
    while time.monotonic() < deadline:
        claimed, delivered = relay_batch()
        total += delivered
        if claimed == 0 or delivered == 0:
            return total, False
    return total, True


def prune_delivered(*, now=None) -> int:
    """Delete delivered rows older than EVENTS_RETENTION_DAYS (their receipts go with them).
    Dead rows are kept until someone looks at them."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=event_settings.get("EVENTS_RETENTION_DAYS"))
    deleted = 0
    with dangerously_all_organizations():
        old = OutboxEvent.dangerously_unscoped.filter(delivered_at__lt=cutoff)
        # In chunks: a backlog of a week of events is not loaded or locked at once.
        while ids := list(old.values_list("pk", flat=True)[:5000]):
            with transaction.atomic():
                OutboxReceipt.objects.filter(event_id__in=ids).delete()
                _, per_model = OutboxEvent.dangerously_unscoped.filter(pk__in=ids).delete()
                deleted += per_model.get("control_tower.OutboxEvent", 0)
    return deleted


def requeue_dead(event_ids) -> int:
    """Give dead events another round of attempts (after the consumer was fixed)."""
    with dangerously_all_organizations():
        return OutboxEvent.dangerously_unscoped.filter(
            event_id__in=list(event_ids), dead_at__isnull=False
        ).update(dead_at=None, attempts=0, next_attempt_at=None, last_error="")


def pending_count() -> int:
    with dangerously_all_organizations():
        return OutboxEvent.dangerously_unscoped.filter(UNDELIVERED).count()
