"""Waking the outbox relay: at most one relay run waits in the queue at any time.

Every commit that writes outbox rows wants a relay run soon. Queueing one per commit (as it
was) filled the queue with runs that found nothing left to do: in the 30-minute soak (docs/
RELIABILITY.md) a third of 7,000 waiting tasks were relay runs, queued behind ETA recomputes
while one run would have delivered everything.

A flag in Redis says "a run is waiting". A commit queues a run only when it sets the flag; a run
clears the flag before it claims rows, so a commit after that moment queues the next run and a
commit before it is seen by this run's claim. Nothing is missed either way. If the flag
outlives its run (the worker died before clearing it), it expires after PENDING_TTL_MS. Until
then, beat's safety-net run every few seconds delivers the rows.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from control_tower.redis_clients import sync_redis

logger = logging.getLogger(__name__)

PENDING_TTL_MS = 10_000
TASK_NAME = "control_tower.events_relay"


def pending_key() -> str:
    # The caches' prefix: a demo and the tests share one Redis without sharing this flag.
    return f"{settings.CACHES['default']['KEY_PREFIX']}:events:relay:pending"


def wake_relay_on_commit() -> None:
    """After the current transaction commits, queue a relay run unless one is waiting."""
    from control_tower.tenancy.enqueue import first_in_transaction

    if first_in_transaction(("events-relay-wakeup",)):
        transaction.on_commit(wake_relay)


def wake_relay() -> None:
    """Queue a relay run now unless one is waiting. Never raises (beat's run is the net)."""
    from celery import current_app

    try:
        if not sync_redis(timeout_s=1).set(pending_key(), "1", nx=True, px=PENDING_TTL_MS):
            return  # a run is waiting: its claim will see this commit's rows
    except Exception:  # noqa: BLE001 - Redis away: so is the broker; beat redoes it
        logger.warning("could not wake the relay; beat will run it", exc_info=True)
        return
    try:
        current_app.send_task(TASK_NAME, retry=False, ignore_result=True)
    except Exception:  # noqa: BLE001
        forget_pending()  # no run is waiting after all
        logger.warning("could not queue the relay; beat will run it", exc_info=True)


def relay_starting() -> None:
    """Called by a relay run before it claims rows: commits from now on queue the next run."""
    forget_pending()


def forget_pending() -> None:
    try:
        sync_redis(timeout_s=1).delete(pending_key())
    except Exception:  # noqa: BLE001
        logger.warning("could not clear the relay's wake-up flag", exc_info=True)
