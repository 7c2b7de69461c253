"""Who hears which events: durable subscribers (through the outbox relay) and live handlers
(after commit, in the emitting process).

Consumers register in their AppConfig.ready(); services never import a consumer. A pattern is
an exact type (`shipment.status_changed`), a namespace (`alert.*`) or `*` (everything).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from control_tower.events.catalog import Event


@dataclass(frozen=True)
class Subscriber:
    name: str
    pattern: str
    handler: Callable[[Event], None]
    backfill: bool = True

    def wants(self, event_type: str) -> bool:
        return matches(self.pattern, event_type)

    def takes(self, event: Event) -> bool:
        """Whether this subscriber handles `event` (a backfill only if it asked for them)."""
        return self.backfill or not event.backfill


def matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


_subscribers: dict[str, Subscriber] = {}
_live: list[tuple[str, Callable[[Event], None]]] = []
_live_async: list[tuple[str, Callable[[Event], Awaitable[None]]]] = []


def subscribe(
    pattern: str, handler: Callable[[Event], None], *, name: str, backfill: bool = True
) -> Subscriber:
    """A durable consumer: `handler(event)` runs in the relay worker, inside a transaction
    with the organization in scope, at least once per event and in order per aggregate. The
    `name` keys its receipts (which events it has handled), so it must stay stable across
    releases; registering the same name again replaces the handler (autoreload, tests).
    `backfill=False`: events recorded after the fact (`backfill()`) are passed over, for
    consumers that react to the present (alerts, notifications)."""
    subscriber = Subscriber(name=name, pattern=pattern, handler=handler, backfill=backfill)
    _subscribers[name] = subscriber
    return subscriber


def unsubscribe(name: str) -> None:
    _subscribers.pop(name, None)


def subscribers() -> list[Subscriber]:
    """Every durable consumer registered in this process."""
    return list(_subscribers.values())


def subscribers_for(event_type: str) -> list[Subscriber]:
    return [s for s in _subscribers.values() if s.wants(event_type)]


def register_live(pattern: str, handler: Callable[[Event], None]) -> None:
    """A live handler: `handler(event)` runs after the emitting transaction commits, in the
    emitting process, at most once. It must not raise (errors are logged) and should be fast."""
    if (pattern, handler) not in _live:
        _live.append((pattern, handler))


def register_live_async(pattern: str, handler: Callable[[Event], Awaitable[None]]) -> None:
    """The live handler for events emitted on the event loop (`emit_live_async`)."""
    if (pattern, handler) not in _live_async:
        _live_async.append((pattern, handler))


def unregister_live(handler) -> None:
    _live[:] = [entry for entry in _live if entry[1] is not handler]
    _live_async[:] = [entry for entry in _live_async if entry[1] is not handler]


def live_handlers(event_type: str) -> list[Callable[[Event], None]]:
    return [handler for pattern, handler in _live if matches(pattern, event_type)]


def live_async_handlers(event_type: str) -> list[Callable[[Event], Awaitable[None]]]:
    return [handler for pattern, handler in _live_async if matches(pattern, event_type)]
