"""The fan-out: the durable subscriber that turns each outbox event into one delivery per
matching endpoint (docs/WEBHOOKS.md "Delivery").

It runs in the relay for every durable event, inside the relay's transaction with the
organization in scope, so it is kept to one insert: the organization's endpoints are read once
and kept in memory for WEBHOOKS_ENDPOINT_CACHE_S (saving an endpoint forgets them in this
process; other processes see the change within that time).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from django.db import transaction

from control_tower.events.catalog import Event
from control_tower.events.registry import matches
from webhooks import endpoint_cache
from webhooks.models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

DISPATCH_TASK = "webhooks.dispatch_due"
# Deliveries made within this long of a queued dispatch are left to that run (it starts after
# the window): a burst of events queues one task, not one per event.
_DISPATCH_DEBOUNCE_S = 0.2
_MESSAGE_NAMESPACE = uuid.UUID("4c8f2a8e-3d1b-4d57-9a63-1b2f0c7e5a10")


@dataclass(frozen=True)
class EndpointFilter:
    id: int
    patterns: tuple[str, ...]
    carrier_id: int | None

    def wants(self, event: Event) -> bool:
        if self.carrier_id is not None and event.carrier_id != self.carrier_id:
            return False
        return any(matches(pattern, event.type) for pattern in self.patterns)


def _endpoints(organization_id: int) -> list[EndpointFilter]:
    cached = endpoint_cache.get(organization_id)
    if cached is not None:
        return cached
    found = [
        EndpointFilter(id=pk, patterns=tuple(patterns), carrier_id=carrier_id)
        for pk, patterns, carrier_id in WebhookEndpoint.objects.filter(enabled=True).values_list(
            "pk", "event_types", "carrier_id"
        )
    ]
    endpoint_cache.put(organization_id, found)
    return found


def message_id(endpoint_id: int, event_id) -> str:
    """The `webhook-id` of an event sent to an endpoint: stable across retries and replays."""
    return "msg_" + uuid.uuid5(_MESSAGE_NAMESPACE, f"{endpoint_id}:{event_id}").hex


def delivery_for(endpoint_id: int, event: Event, *, seq: int = 0, replay_of=None):
    envelope = event.as_dict()
    return WebhookDelivery(
        organization_id=event.organization_id,
        endpoint_id=endpoint_id,
        event_id=event.id,
        event_type=event.type,
        payload=envelope,
        ordering_key=f"{event.aggregate_type}:{event.aggregate_id}"[:160],
        message_id=message_id(endpoint_id, event.id),
        seq=seq,
        replay_of=replay_of,
    )


def fan_out(event: Event) -> None:
    """One delivery per enabled endpoint that wants `event` (idempotent: a re-delivered event
    inserts nothing new), and a dispatcher run queued after commit."""
    wanted = [e.id for e in _endpoints(event.organization_id) if e.wants(event)]
    if not wanted:
        return
    WebhookDelivery.objects.bulk_create(
        [delivery_for(endpoint_id, event) for endpoint_id in wanted], ignore_conflicts=True
    )
    dispatch_on_commit()


_last_queued = 0.0


def dispatch_on_commit() -> None:
    """Queue a dispatcher run after commit, at most one per _DISPATCH_DEBOUNCE_S per process
    (the run is delayed by that window, so it sees every delivery the window skipped). The
    debounce is decided after the commit, never before: the relay commits a chunk of events
    at once, and a run queued before rows it skipped were committed would leave them to beat.
    A broker failure is logged: beat runs the dispatcher every few seconds."""

    def send() -> None:
        global _last_queued
        now = time.monotonic()
        if now - _last_queued < _DISPATCH_DEBOUNCE_S:
            return
        _last_queued = now
        from celery import current_app

        try:
            current_app.send_task(
                DISPATCH_TASK, countdown=_DISPATCH_DEBOUNCE_S, retry=False, ignore_result=True
            )
        except Exception:  # noqa: BLE001 - the beat run redoes it
            _last_queued = 0.0
            logger.warning("could not queue %s; beat will run it", DISPATCH_TASK, exc_info=True)

    transaction.on_commit(send)
