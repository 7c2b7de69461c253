"""At most one relay run waits in the queue (control_tower/events/wakeup.py): many commits with
events queue one run, a run that has started lets the next commit queue another, and nothing
committed is left behind. Real Redis, real publishes (counted through Celery's signal, so the
session's worker consuming the queue meanwhile changes nothing)."""

from __future__ import annotations

import pytest
from celery.signals import task_prerun
from django.db import transaction

from control_tower.events import EventType, catalog, make_event, register_event_type, relay
from control_tower.events import emit as emit_event
from control_tower.events.models import OutboxEvent
from control_tower.events.wakeup import (
    PENDING_TTL_MS,
    TASK_NAME,
    forget_pending,
    pending_key,
    relay_starting,
)
from control_tower.redis_clients import sync_redis
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TYPE = "alert.wakeup_test"


@pytest.fixture
def durable_type():
    register_event_type(
        EventType(TYPE, 1, "route", durable=True, description="wake-up tests"), replace=True
    )
    forget_pending()
    yield TYPE
    catalog.EVENT_TYPES.pop(TYPE, None)
    forget_pending()


@pytest.fixture
def relay_runs_started():
    """Relay runs a worker of this process started during the test."""
    started: list[str] = []

    def record(sender=None, **_):
        if sender is not None and sender.name == TASK_NAME:
            started.append(sender.name)

    task_prerun.connect(record, weak=False)
    yield started
    task_prerun.disconnect(record)


def commit_event(org, n: int) -> None:
    with transaction.atomic():
        emit_event(
            make_event(
                TYPE, organization_id=org.pk, carrier_id=None, aggregate_id="A", payload={"n": n}
            )
        )


def relay_publishes(published: list[str]) -> int:
    return published.count(TASK_NAME)


def test_many_commits_queue_one_relay_run_while_it_waits(
    org, durable_type, published_tasks, relay_runs_started
):
    for n in range(20):
        commit_event(org, n)
    # One run queued; a commit queues another only after a run has started (and cleared the
    # flag), which a worker of this process may have done meanwhile.
    assert 1 <= relay_publishes(published_tasks) <= len(relay_runs_started) + 1
    if not relay_runs_started:
        assert 0 < sync_redis().pttl(pending_key()) <= PENDING_TTL_MS  # it expires by itself


def test_a_started_run_lets_the_next_commit_queue_another(org, durable_type, published_tasks):
    commit_event(org, 1)
    relay_starting()  # a run starts: it clears the flag before it claims rows
    before = relay_publishes(published_tasks)
    commit_event(org, 2)  # committed after that claim: it needs a run of its own
    assert relay_publishes(published_tasks) == before + 1
    # Whoever runs it (this test, or the session's worker, whose lease makes this test's
    # relay skip the rows meanwhile), nothing committed is left behind.
    wait_for(
        lambda: (
            relay.relay_pending() >= 0
            and not OutboxEvent.dangerously_unscoped.filter(delivered_at__isnull=True).exists()
        ),
        what="both events delivered",
    )
