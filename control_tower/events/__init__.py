"""Domain events: the catalog (what happened), `emit` (the one call services make), the
subscriptions (who hears it) and the durable outbox relay. docs/EVENTS.md."""

from control_tower.events.catalog import (
    EVENT_TYPES,
    Event,
    EventType,
    make_event,
    register_event_type,
)
from control_tower.events.emit import backfill, emit, emit_live_async, emit_many
from control_tower.events.registry import (
    register_live,
    register_live_async,
    subscribe,
    unsubscribe,
)

__all__ = [
    "EVENT_TYPES",
    "Event",
    "EventType",
    "backfill",
    "emit",
    "emit_live_async",
    "emit_many",
    "make_event",
    "register_event_type",
    "register_live",
    "register_live_async",
    "subscribe",
    "unsubscribe",
]
