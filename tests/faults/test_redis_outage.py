"""Issue 18, "Faults": Redis dies (SIGKILL: the Celery queue, the channel layer and the caches go
with it) and comes back, under a web process, a Celery worker and a dispatcher's live socket.

Promised (docs/RELIABILITY.md "Faults"): ingest does not need Redis, so every fix sent while it
is away is answered 200 and stored; live pushes and ETA recomputes resume by themselves once it
is back (the web process's subscription and the worker's broker connection reconnect), with no
restart of anything."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.sync.client import connect

from tests.conftest import wait_for
from tests.faults.load import IngestLoad
from tests.faults.services import free_port, web, worker

pytestmark = pytest.mark.faults

FAST_ETAS = {"ETA_DEBOUNCE_S": "0.2", "ETA_DEBOUNCE_JITTER_S": "0"}


def osmand(base: str, token: str, lat: float) -> int:
    params = {
        "id": "van",
        "lat": f"{lat:.6f}",
        "lon": "-71.2460",
        "timestamp": str(int(time.time()) - 1),
    }
    return httpx.get(f"{base}/ingest/osmand/{token}/", params=params, timeout=30).status_code


def etas_updated(scenario, route_id: int):
    rows = scenario.sql(
        "SELECT max(eta_updated_at) FROM tracking_stop WHERE route_id = %s", [route_id]
    )
    return rows[0][0]


def moved_on(socket, vehicle_lat: float, timeout: float) -> bool:
    """Whether a position at `vehicle_lat` (in a `vehicles.moved` batch) arrives on `socket`
    within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = json.loads(socket.recv(timeout=max(0.05, deadline - time.monotonic())))
        except TimeoutError:
            return False
        if message.get("type") != "vehicles.moved":  # positions come batched
            continue
        if any(round(i["lat"], 6) == round(vehicle_lat, 6) for i in message["data"]["items"]):
            return True
    return False


def test_ingest_is_durable_without_redis_and_pushes_and_etas_resume(scenario):
    s = scenario(**FAST_ETAS)
    world = s.world("ingest", "--phones", "6")
    port = free_port()
    s.started(web(s.env, s.log_dir, port))
    s.started(worker(s.env, s.log_dir))
    base = f"http://127.0.0.1:{port}"
    van = world["devices"][0]
    headers = {"Cookie": f"sessionid={world['session']}", "Origin": base}

    # Before: a ping reaches the dispatcher's socket and the route's ETAs.
    with connect(f"ws://127.0.0.1:{port}/ws/v1/events/", additional_headers=headers) as socket:
        assert json.loads(socket.recv(timeout=10))["type"] == "hello"
        assert osmand(base, van["token"], -29.9010) == 200
        assert moved_on(socket, -29.9010, timeout=10)
    first_eta = wait_for(lambda: etas_updated(s, world["route_id"]), timeout=60, what="ETAs")

    # Redis dies: phones keep reporting through both paths, and nothing is lost.
    s.redis.kill()
    load = IngestLoad(base, world["devices"][1:], batch_devices=2, batch=10)
    load.start()
    time.sleep(4)
    load.stop()
    assert osmand(base, van["token"], -29.9020) == 200
    assert {a.status for a in load.answers} == {200}, {a.status for a in load.answers}
    stored = s.sql("SELECT device_id, extract(epoch FROM fix_time)::bigint FROM tracking_ping")
    assert load.acknowledged() <= {(d, int(e)) for d, e in stored}
    health = httpx.get(f"{base}/healthz", timeout=30)
    assert health.status_code == 503 and health.json()["redis"] != "ok"

    # Redis is back (empty: it kept nothing). Nothing is restarted.
    s.redis.start()
    with connect(f"ws://127.0.0.1:{port}/ws/v1/events/", additional_headers=headers) as socket:
        assert json.loads(socket.recv(timeout=10))["type"] == "hello"
        lat = -29.9030
        pushed = False
        for _ in range(20):  # the worker's and the hub's reconnects take a moment
            assert osmand(base, van["token"], lat) == 200
            if moved_on(socket, lat, timeout=1.0):
                pushed = True
                break
            lat -= 0.0001
        assert pushed, s.logs()
    wait_for(  # the worker's broker connection came back: pings recompute ETAs again
        lambda: etas_updated(s, world["route_id"]) > first_eta,
        timeout=60,
        what="ETAs recomputed after Redis came back",
    )
    assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
