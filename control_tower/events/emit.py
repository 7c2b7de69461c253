"""`emit`: the one call services make when something happened.

Inside the caller's transaction, `emit` (a) writes one outbox row when the event's type is
durable, in that same transaction, so a rollback leaves no event, and (b) schedules live
delivery to the registered live handlers after commit. Outside a transaction it behaves as
autocommit: the row is written at once and live handlers run at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

from control_tower.events.catalog import EVENT_TYPES, Event, merge_payloads
from control_tower.events.models import OutboxEvent
from control_tower.events.registry import live_async_handlers, live_handlers
from control_tower.events.wakeup import wake_relay_on_commit
from control_tower.realtime import publishing_together

logger = logging.getLogger(__name__)

_backfilling: ContextVar[bool] = ContextVar("events_backfilling", default=False)


@contextmanager
def backfill() -> Iterator[None]:
    """Every event emitted inside is marked `backfill` (history imports, replays of past
    days): the outbox keeps them for reports, and subscribers registered with
    `backfill=False` (alerts, customer notifications) pass them over, so loading last week
    does not page a dispatcher or text a customer about it."""
    token = _backfilling.set(True)
    try:
        yield
    finally:
        _backfilling.reset(token)


def _mark(event: Event) -> Event:
    if _backfilling.get():
        event.backfill = True
    return event


class _LiveDelivery:
    """The on-commit callback of one event; recognisable, so that a later emit of a merged
    type in the same transaction can find it and fold its payload in."""

    def __init__(self, event: Event) -> None:
        self.event = event
        self.merge_key = (event.type, *event.aggregate_key)

    def __call__(self) -> None:
        deliver_live(self.event)


def deliver_live(event: Event) -> None:
    """Hand a committed event to every live handler. A handler's failure is logged, never
    raised: the change is committed and the live layer re-syncs by itself."""
    for handler in live_handlers(event.type):
        try:
            handler(event)
        except Exception:  # noqa: BLE001
            logger.warning("live handler %r failed on %s", handler, event.type, exc_info=True)


def _pending(event: Event) -> _LiveDelivery | None:
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return None
    key = (event.type, *event.aggregate_key)
    # Django drops the callbacks of a rolled-back savepoint from this list, so a merge never
    # targets an event that no longer exists.
    for entry in connection.run_on_commit:
        callback = entry[1]
        if isinstance(callback, _LiveDelivery) and callback.merge_key == key:
            return callback
    return None


def emit(event: Event) -> Event:
    """Record `event` (see the module docstring). Returns the event that will be delivered: for
    a type merged per transaction (`route.changed`), a second emit for the same aggregate
    returns the first event, its payload updated, and writes no second row."""
    event_type = EVENT_TYPES[_mark(event).type]
    if event_type.merge_in_transaction:
        pending = _pending(event)
        if pending is not None:
            pending.event.payload = merge_payloads(pending.event.payload, event.payload)
            if event_type.durable:
                OutboxEvent.dangerously_unscoped.filter(event_id=pending.event.id).update(
                    payload=pending.event.payload
                )
            return pending.event
    if event_type.durable:
        OutboxEvent.dangerously_unscoped.bulk_create([OutboxEvent.from_event(event)])
        wake_relay_on_commit()
    transaction.on_commit(_LiveDelivery(event))
    return event


def emit_many(events: list[Event]) -> None:
    """`emit` for a batch of events of types that are not merged: the outbox rows go in one
    INSERT (the ETA recompute emits one event per stop that moved)."""
    if not events:
        return
    events = [_mark(e) for e in events]
    if any(EVENT_TYPES[e.type].merge_in_transaction for e in events):
        raise ValueError("emit_many() takes no merged event types; use emit().")
    rows = [OutboxEvent.from_event(e) for e in events if EVENT_TYPES[e.type].durable]
    if rows:
        OutboxEvent.dangerously_unscoped.bulk_create(rows)
        wake_relay_on_commit()
    transaction.on_commit(_LiveDeliveries(events))


class _LiveDeliveries:
    """The on-commit callback of a batch (`emit_many`): every event's live handlers, their
    sends in one Redis round trip."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events

    def __call__(self) -> None:
        with publishing_together():
            for event in self.events:
                deliver_live(event)


async def emit_live_async(event: Event) -> None:
    """Deliver a live-only event from code on the event loop whose write is already committed
    (the ingest fast path): awaits the async live handlers, no database, no outbox."""
    if EVENT_TYPES[event.type].durable:
        raise ValueError(f"{event.type} is durable: emit it in its transaction with emit().")
    for handler in live_async_handlers(event.type):
        try:
            await handler(event)
        except Exception:  # noqa: BLE001
            logger.warning("live handler %r failed on %s", handler, event.type, exc_info=True)
