"""The opt-in queue per kind of work (control_tower/celery_queues.py): with
CELERY_QUEUES_PER_KIND=1 the project's own Celery app sends each kind to its queue on the real
Redis broker; without it, everything stays on the default queue. Each case runs in a fresh
process, since settings are read once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import redis
from django.conf import settings

from control_tower.celery import app
from control_tower.celery_queues import KIND_OF_TASKS, KINDS, queue_of_kind

# Sends one task per kind through the real app and broker (no worker: the messages stay queued).
SEND_ONE_OF_EACH = """
import json, django
django.setup()
from control_tower.celery import app
sent = ["tracking.eta_sweep", "notifications.dispatch_due", "webhooks.dispatch_due",
        "sla.rollup_dirty", "control_tower.events_relay", "tracking.maintain_ping_partitions"]
for name in sent:
    app.send_task(name)
print(json.dumps({name: app.amqp.router.route({}, name)["queue"].name for name in sent}))
"""


def _send_in_fresh_process(queues_per_kind: bool, default_queue: str) -> dict:
    env = dict(
        os.environ,
        CELERY_QUEUES_PER_KIND="1" if queues_per_kind else "0",
        CELERY_TASK_DEFAULT_QUEUE=default_queue,
        DJANGO_SETTINGS_MODULE="control_tower.settings",
    )
    done = subprocess.run(
        [sys.executable, "-c", SEND_ONE_OF_EACH],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _queued(client: redis.Redis, queue: str) -> list[str]:
    return [json.loads(raw)["headers"]["task"] for raw in client.lrange(queue, 0, -1)]


def test_each_kind_of_task_lands_in_its_own_queue_when_opted_in():
    default = f"ct-routes-{uuid.uuid4().hex[:8]}"
    queues = [default, *(queue_of_kind(default, kind) for kind in KINDS)]
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        routed = _send_in_fresh_process(True, default)
        assert routed["tracking.eta_sweep"] == f"{default}.eta"
        assert _queued(client, f"{default}.eta") == ["tracking.eta_sweep"]
        assert _queued(client, f"{default}.notifications") == ["notifications.dispatch_due"]
        assert _queued(client, f"{default}.webhooks") == ["webhooks.dispatch_due"]
        assert _queued(client, f"{default}.reports") == ["sla.rollup_dirty"]
        assert _queued(client, f"{default}.events") == ["control_tower.events_relay"]
        assert _queued(client, default) == ["tracking.maintain_ping_partitions"]
    finally:
        client.delete(*queues)


def test_everything_stays_on_the_default_queue_unless_opted_in():
    default = f"ct-routes-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        routed = _send_in_fresh_process(False, default)
        assert set(routed.values()) == {default}
        assert len(_queued(client, default)) == 6
        assert not any(client.exists(queue_of_kind(default, kind)) for kind in KINDS)
    finally:
        client.delete(default, *(queue_of_kind(default, kind) for kind in KINDS))


def test_every_route_pattern_names_a_registered_task():
    # A renamed task would silently fall back to the default queue: catch the stale pattern.
    app.loader.import_default_modules()
    registered = [name for name in app.tasks if not name.startswith("celery.")]
    for pattern in KIND_OF_TASKS:
        prefix = pattern.rstrip("*")
        matches = [
            n
            for n in registered
            if n == pattern or (pattern.endswith("*") and n.startswith(prefix))
        ]
        assert matches, f"no registered task matches the route {pattern!r}"
