"""The relay's Celery tasks (thin: the work is in relay.py).

`events_relay` is queued after a commit that wrote outbox rows when no run is waiting already
(control_tower/events/wakeup.py), by beat every few seconds as the safety net, and by itself
again when its budget ran out with rows left; `events_prune` runs hourly.
"""

from __future__ import annotations

from celery import shared_task

from control_tower.events import relay, wakeup


@shared_task(name="control_tower.events_relay", ignore_result=True)
def events_relay() -> int:
    wakeup.relay_starting()  # before the claim: a commit from now on queues the next run
    delivered, unfinished = relay.relay_within_budget()
    if unfinished:
        # More is waiting: run again, but at the back of the queue, so that a one-process
        # worker runs the dispatchers queued meanwhile instead of relaying for minutes.
        wakeup.wake_relay()  # unless a commit meanwhile queued one already; never raises
    return delivered


@shared_task(name="control_tower.events_prune", ignore_result=True)
def events_prune() -> int:
    return relay.prune_delivered()
