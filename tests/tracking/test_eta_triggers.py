"""ETAs follow pings (tracking/eta/triggers.py): a ping through either ingest path recomputes its
driver's route on a real Celery worker, debounced per route (leading edge, at most once per
ETA_DEBOUNCE_S), never for outliers, never across tenants, and never at the expense of the
ping when Redis is away. The sweep is the trailing edge: it takes the pings nothing followed."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from control_tower.asgi import application
from tests.conftest import wait_for
from tests.factories import (
    ETA_HUB,
    ETA_POINTS,
    running_route_with_phone,
)
from tracking.eta.triggers import routes_due, wait_until_published
from tracking.ingest import fast
from tracking.models import Ping, Stop
from tracking.tasks import eta_sweep

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/ingest/pings"
HUB, POINTS = ETA_HUB, ETA_POINTS


def build_route(tenant):
    """A running route of three stops today, its driver's phone; returns (route, raw token)."""
    route, _device, token = running_route_with_phone(tenant, shipments=False)
    return route, token


def stored_etas(route) -> list:
    """The stops' `eta_updated_at` (None until an ETA was stored)."""
    return list(
        Stop.dangerously_unscoped.filter(route_id=route.pk)
        .order_by("sequence")
        .values_list("eta_updated_at", flat=True)
    )


def fix(*, ago_s: float = 2, lat=-29.9010, lon=-71.2460, **extra) -> dict:
    moment = datetime.now(UTC) - timedelta(seconds=ago_s)
    return {"time": moment.isoformat(), "lat": lat, "lon": lon, "accuracy": 5, **extra}


def native_ping(client, **fields):
    return client.post(URL, json.dumps([fix(**fields)]), content_type="application/json")


def osmand_ping(token: str, *, lat="-29.9010", lon="-71.2460", **extra):
    """One OsmAnd GET through the real ASGI application (the fast path); returns the status."""
    query = {
        "id": "van",
        "lat": lat,
        "lon": lon,
        "timestamp": str(int(time.time()) - 2),
        "accuracy": "5",
    }

    async def main():
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                response = await c.get(f"/ingest/osmand/{token}/", params={**query, **extra})
                return response.status_code
        finally:
            await fast.close_pools()

    status = asyncio.run(main())
    wait_until_published()  # the fast path hands its trigger to a publisher thread
    return status


@pytest.fixture
def queued():
    """Route ids that pings made due for a recompute during the test (a burst task takes them)."""
    routes: list[int] = []

    def record(sender=None, route_ids=(), **_):
        routes.extend(route_ids)

    routes_due.connect(record, weak=False)
    yield routes
    routes_due.disconnect(record)


def test_a_native_ping_stores_etas_on_the_drivers_route(tenant, device_client_for, celery_worker):
    route, token = build_route(tenant)
    assert stored_etas(route) == [None, None, None]
    response = native_ping(device_client_for(token))
    assert response.status_code == 200 and response.json()["stored"] == 1
    assert wait_for(lambda: all(stored_etas(route)), timeout=10)


def test_a_device_protocol_ping_through_the_fast_path_stores_etas(tenant, celery_worker):
    route, token = build_route(tenant)
    assert osmand_ping(token) == 200
    assert wait_for(lambda: all(stored_etas(route)), timeout=10)
    assert Ping.dangerously_unscoped.filter(organization=tenant.organization).count() == 1


def test_pings_inside_the_window_queue_no_second_recompute(
    tenant, device_client_for, celery_worker, queued, settings
):
    settings.ETA_DEBOUNCE_S = 30
    route, token = build_route(tenant)
    phone = device_client_for(token)
    native_ping(phone, ago_s=10)
    assert wait_for(lambda: all(stored_etas(route)), timeout=10)
    first = stored_etas(route)
    # Two more pings (one on each path), both moving the position, inside the window.
    assert native_ping(phone, ago_s=6, lat=-29.9005).json()["position_moved"]
    assert osmand_ping(token, lat="-29.9000") == 200
    assert queued == [route.pk]
    time.sleep(0.5)  # what a wrongly queued task would need on the idle worker
    assert stored_etas(route) == first


def test_after_a_quiet_window_the_next_ping_recomputes_at_once(
    tenant, device_client_for, celery_worker, queued, settings
):
    settings.ETA_DEBOUNCE_S, settings.ETA_DEBOUNCE_JITTER_S = 0.3, 0
    route, token = build_route(tenant)
    phone = device_client_for(token)
    native_ping(phone, ago_s=10)
    assert wait_for(lambda: all(stored_etas(route)), timeout=10)
    first = stored_etas(route)[0]
    time.sleep(0.4)
    native_ping(phone, ago_s=5, lat=-29.9005)
    assert queued == [route.pk, route.pk]
    assert wait_for(lambda: stored_etas(route)[0] > first, timeout=10)


def test_an_outlier_fix_does_not_trigger(tenant, device_client_for, celery_worker, queued):
    route, token = build_route(tenant)
    phone = device_client_for(token)
    poor = native_ping(phone, accuracy=900).json()
    mock = native_ping(phone, ago_s=3, mock=True).json()
    assert poor["flagged"] == 1 and mock["flagged"] == 1
    assert osmand_ping(token, accuracy="900") == 200
    assert Ping.dangerously_unscoped.filter(organization=tenant.organization).count() == 3
    assert queued == []
    time.sleep(0.5)
    assert stored_etas(route) == [None, None, None]


def test_a_ping_touches_only_its_own_organizations_routes(
    tenant, other_tenant, device_client_for, celery_worker, queued
):
    route, token = build_route(tenant)
    theirs, their_token = build_route(other_tenant)
    assert osmand_ping(token) == 200
    assert wait_for(lambda: all(stored_etas(route)), timeout=10)
    assert queued == [route.pk]
    time.sleep(0.5)
    assert stored_etas(theirs) == [None, None, None]
    # And the other way round: their ping, their route only.
    before = stored_etas(route)
    native_ping(device_client_for(their_token))
    assert wait_for(lambda: all(stored_etas(theirs)), timeout=10)
    assert queued == [route.pk, theirs.pk]
    assert stored_etas(route) == before


def test_without_redis_the_ping_is_stored_and_answered(
    tenant, device_client_for, settings, caplog, queued
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    route, token = build_route(tenant)
    with caplog.at_level(logging.WARNING, logger="tracking.eta.triggers"):
        response = native_ping(device_client_for(token), ago_s=10)
        assert osmand_ping(token, lat="-29.9000") == 200  # a newer fix: it moves the position
    assert response.status_code == 200 and response.json()["stored"] == 1
    assert Ping.dangerously_unscoped.filter(organization=tenant.organization).count() == 2
    assert queued == []
    assert sum("ETA trigger failed" in r.getMessage() for r in caplog.records) == 2
    assert stored_etas(route) == [None, None, None]


def test_the_sweep_is_the_trailing_edge_and_skips_what_a_ping_just_did(
    tenant, device_client_for, celery_worker, settings
):
    settings.ETA_DEBOUNCE_S, settings.ETA_DEBOUNCE_JITTER_S = 2.0, 0
    route, token = build_route(tenant)
    phone = device_client_for(token)
    native_ping(phone, ago_s=10)
    assert wait_for(lambda: all(stored_etas(route)), timeout=10)
    first = stored_etas(route)[0]
    native_ping(phone, ago_s=5, lat=-29.9005)  # inside the window: not recomputed by the ping
    assert eta_sweep.run() == 0  # reported since its ETA, but a ping just recomputed it
    assert stored_etas(route)[0] == first
    # No ping follows: two windows after the last recompute the sweep catches the one held back.
    time.sleep(4.1)
    assert eta_sweep.run() == 1
    assert stored_etas(route)[0] > first
    assert eta_sweep.run() == 0  # nothing new since


def test_windows_are_jittered_so_a_fleet_does_not_recompute_in_bursts(settings):
    from tracking.eta.triggers import _redis, debounce_key, routes_claim

    settings.ETA_DEBOUNCE_S, settings.ETA_DEBOUNCE_JITTER_S = 15, 5
    route_ids = list(range(900_001, 900_041))
    assert routes_claim(organization_id=999_999, route_ids=route_ids) == route_ids
    assert routes_claim(organization_id=999_999, route_ids=route_ids) == []  # all closed now
    ttls = [
        _redis().pttl(debounce_key(organization_id=999_999, route_id=route_id))
        for route_id in route_ids
    ]
    _redis().delete(*(debounce_key(organization_id=999_999, route_id=r) for r in route_ids))
    assert all(14_000 < ttl <= 20_000 for ttl in ttls)  # never shorter than the window
    assert max(ttls) - min(ttls) > 1_000  # spread, not one shared deadline
