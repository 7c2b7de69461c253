"""Issue 18, "Faults": the Celery worker is killed (SIGKILL to the whole worker, as the OOM killer
or a lost machine would) in the middle of the outbox relay's task, with thousands of events
to deliver.

Promised (docs/RELIABILITY.md "Faults", docs/EVENTS.md): the task was acknowledged late, so it is
still in Redis, unacknowledged, and runs again on the next worker once the visibility timeout
has passed (nothing queues it again here: no beat, no new events); the chunk the dying worker
was delivering was one transaction, so none of it half-happened; the rows it had leased are
taken over when the lease ends; every event is delivered, and each subscriber's effect (one
webhook delivery per event for the endpoint, one receipt per event and subscriber) happened
exactly once."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import wait_for
from tests.faults.services import worker

pytestmark = pytest.mark.faults

EVENTS = 2000
RELAY = {
    "EVENTS_RELAY_LEASE_S": "3",  # a dead relay's rows are taken over 3 s after its claim
    "EVENTS_RELAY_BUDGET_S": "600",  # one task run relays everything: the kill lands inside it
    "CELERY_VISIBILITY_TIMEOUT_S": "6",  # an unacknowledged task is handed out again after 6 s
}


def delivered(s) -> int:
    return s.sql("SELECT count(*) FROM control_tower_outboxevent WHERE delivered_at IS NOT NULL")[
        0
    ][0]


def queued_task_names(s) -> list[str]:
    redis = s.redis.client()
    names = [json.loads(raw)["headers"]["task"] for raw in redis.lrange("celery", 0, -1)]
    held = [json.loads(v)[0]["headers"]["task"] for v in redis.hvals("unacked")]
    return names, held


def test_a_relay_killed_mid_batch_runs_again_and_delivers_every_event_once(scenario):
    s = scenario(**RELAY)
    world = s.world("relay", "--events", str(EVENTS))
    waiting, held = queued_task_names(s)
    assert waiting == ["control_tower.events_relay"] and held == []  # one run, queued on commit

    first = s.started(worker(s.env, s.log_dir, "worker-1"))
    started_at = time.monotonic()
    wait_for(lambda: delivered(s) >= 200, timeout=120, what="relay under way")
    print(f"\n200 delivered {time.monotonic() - started_at:.1f} s after the worker started")
    first.kill()
    at_kill = delivered(s)
    assert 200 <= at_kill < EVENTS, at_kill
    _waiting, held = queued_task_names(s)
    assert "control_tower.events_relay" in held  # acknowledged late: still Redis's, not gone

    killed_at = time.monotonic()
    s.started(worker(s.env, s.log_dir, "worker-2"))
    wait_for(lambda: delivered(s) == EVENTS, timeout=240, what="every event delivered")
    print(
        f"delivered at the kill {at_kill} of {EVENTS}; "
        f"all {time.monotonic() - killed_at:.1f} s later"
    )

    per_event = s.sql(
        "SELECT e.id, count(r.id) FROM control_tower_outboxevent e "
        "LEFT JOIN control_tower_outboxreceipt r ON r.event_id = e.id "
        "AND r.subscriber = 'webhooks.fanout' GROUP BY e.id"
    )
    assert len(per_event) == EVENTS and {n for _, n in per_event} == {1}
    deliveries = s.sql(
        "SELECT count(*), count(DISTINCT event_id) FROM webhooks_webhookdelivery "
        "WHERE endpoint_id = %s",
        [world["endpoint_id"]],
    )
    assert deliveries == [(EVENTS, EVENTS)]
    assert s.sql("SELECT count(*) FROM control_tower_outboxevent WHERE dead_at IS NOT NULL") == [
        (0,)
    ]
    # The task that was killed was run again and finished: nothing is held any more.
    wait_for(
        lambda: "control_tower.events_relay" not in queued_task_names(s)[1],
        timeout=30,
        what="the run that was killed, run again and acknowledged",
    )
