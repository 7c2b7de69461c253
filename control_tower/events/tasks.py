"""The relay's Celery tasks (thin: the work is in relay.py).

`events_relay` is enqueued after every commit that wrote outbox rows (once per transaction)
and by beat every few seconds as the safety net; `events_prune` runs hourly.
"""

from __future__ import annotations

from celery import shared_task

from control_tower.events import relay


@shared_task(name="control_tower.events_relay", ignore_result=True)
def events_relay() -> int:
    return relay.relay_pending()


@shared_task(name="control_tower.events_prune", ignore_result=True)
def events_prune() -> int:
    return relay.prune_delivered()
