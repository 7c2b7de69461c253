"""The relay's Celery tasks (thin: the work is in relay.py).

`events_relay` is enqueued after every commit that wrote outbox rows (once per transaction)
and by beat every few seconds as the safety net, and queues itself again when its budget ran
out with rows left; `events_prune` runs hourly.
"""

from __future__ import annotations

import logging

from celery import shared_task

from control_tower.events import relay

logger = logging.getLogger(__name__)


@shared_task(name="control_tower.events_relay", ignore_result=True)
def events_relay() -> int:
    delivered, unfinished = relay.relay_within_budget()
    if unfinished:
        # More is waiting: run again, but at the back of the queue, so that a one-process
        # worker runs the dispatchers queued meanwhile instead of relaying for minutes.
        try:
            events_relay.apply_async(retry=False)
        except Exception:  # noqa: BLE001 - beat's safety-net run picks the rest up
            logger.warning("could not queue the next relay run; beat will", exc_info=True)
    return delivered


@shared_task(name="control_tower.events_prune", ignore_result=True)
def events_prune() -> int:
    return relay.prune_delivered()
