"""Group commit of single fixes (tracking/ingest/group.py) against one write per request (the
path it replaces), through the real ASGI application, on the same inputs: many devices sending
at once (so groups mix devices), each with moves, stationary jitter, an outlier, a replay, a
late fix and an impossible jump. Stored rows (every column but the device and the receive
time), last positions, results and the live events must be equal."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from django.db import connection

from carriers.models import Device
from control_tower.asgi import application
from tests.factories import VehicleFactory
from tracking.ingest import fast, group

pytestmark = pytest.mark.django_db(transaction=True)

T0 = int(time.time()) - 900
DEVICES = 12


def script(index: int) -> list[dict]:
    """One phone's requests, in order (OsmAnd: speed in knots)."""
    lat = -29.9 + index * 0.01

    def fix(dt_s, dlat, **extra):
        return {
            "lat": f"{lat + dlat:.6f}",
            "lon": "-71.25",
            "timestamp": str(T0 + dt_s),
            "speed": "10",
            "accuracy": "6",
            "batt": str(90 - index),
            "id": str(1000 + index),
            **extra,
        }

    return [
        fix(0, 0),
        fix(5, 0.0003),
        fix(10, 0.0003, speed="0"),  # stationary jitter: the time moves, the marker stays
        fix(15, 0.0006, accuracy="900"),  # poor accuracy: stored, flagged
        fix(5, 0.0003),  # a replay
        fix(3, 0.0001),  # late
        fix(20, 0.5),  # an impossible jump
        fix(25, 0.0009, bearing="90"),
    ]


def run_phones(tokens: list[str]) -> list[list[int]]:
    """Every phone sends its script, one request after the other, all phones at once."""

    async def phone(client, index, token):
        statuses = []
        for query in script(index):
            response = await client.get(f"/ingest/osmand/{token}/", params=query)
            statuses.append(response.status_code)
        return statuses

    async def main():
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                return await asyncio.gather(
                    *(phone(client, i, token) for i, token in enumerate(tokens))
                )
        finally:
            await fast.close_pools()

    return asyncio.run(main())


def stored(device) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT organization_id, fix_time, event_id, ST_AsEWKT(location), accuracy_m, "
            "speed_mps, heading_deg, altitude_m, battery_pct, charging, moving, mock, source, "
            "flags, attributes FROM tracking_ping WHERE device_id = %s ORDER BY fix_time",
            [device.pk],
        )
        pings = cursor.fetchall()
        cursor.execute(
            "SELECT organization_id, fix_time, ST_AsEWKT(location), accuracy_m, speed_mps, "
            "heading_deg, battery_pct, moving, source FROM tracking_deviceposition "
            "WHERE device_id = %s",
            [device.pk],
        )
        position = cursor.fetchone()
        cursor.execute(
            "SELECT last_seen_at IS NOT NULL FROM carriers_device WHERE id = %s", [device.pk]
        )
        return pings, position, cursor.fetchone()[0]


@pytest.fixture
def phones(tenant, device_for):
    """Two fleets of DEVICES phones on vehicles: (devices, tokens) each."""
    fleets = []
    for _ in range(2):
        devices, tokens = [], []
        for _ in range(DEVICES):
            device, token = device_for(tenant)
            vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
            Device.dangerously_unscoped.filter(pk=device.pk).update(vehicle=vehicle)
            devices.append(device)
            tokens.append(token)
        fleets.append((devices, tokens))
    return fleets


@pytest.fixture
def pushes(monkeypatch):
    """The live events the fast path hands to emit_live_async, per device."""
    seen: dict[int, list[dict]] = {}

    async def record(event):
        payload = dict(event.payload)
        seen.setdefault(payload.pop("device"), []).append(
            {k: v for k, v in payload.items() if k not in {"id", "route"}}
        )

    monkeypatch.setattr(fast, "emit_live_async", record)
    return seen


@pytest.fixture
def group_sizes(monkeypatch):
    sizes = []
    real = group._store_group

    async def spy(pool, items):
        sizes.append(len(items))
        return await real(pool, items)

    monkeypatch.setattr(group, "_store_group", spy)
    return sizes


def test_group_commit_stores_and_pushes_what_one_write_per_request_does(
    monkeypatch, phones, pushes, group_sizes
):
    (grouped, grouped_tokens), (single, single_tokens) = phones
    monkeypatch.setattr(fast, "GROUP_COMMIT", True)
    assert run_phones(grouped_tokens) == [[200] * 8] * DEVICES
    assert max(group_sizes) > 1, group_sizes  # groups really mixed devices
    assert sum(group_sizes) == DEVICES * 8
    monkeypatch.setattr(fast, "GROUP_COMMIT", False)
    calls = len(group_sizes)
    assert run_phones(single_tokens) == [[200] * 8] * DEVICES
    assert len(group_sizes) == calls  # the second fleet went one write per request
    for mine, theirs in zip(grouped, single, strict=True):
        got, expected = stored(mine), stored(theirs)
        assert got == expected
        assert len(got[0]) == 7  # the replay stored once
        assert {row[13] for row in got[0]} > {0}  # flagged fixes among them
        assert pushes[mine.pk] == pushes[theirs.pk] and pushes[mine.pk]


def test_two_fixes_of_one_device_at_once_go_in_two_groups(monkeypatch, phones, group_sizes):
    (devices, tokens), _ = phones
    monkeypatch.setattr(fast, "GROUP_COMMIT", True)
    first, second = script(0)[0], script(0)[1]

    async def main():
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                url = f"/ingest/osmand/{tokens[0]}/"
                return await asyncio.gather(
                    client.get(url, params=first), client.get(url, params=second)
                )
        finally:
            await fast.close_pools()

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200, 200]
    pings, position, _seen = stored(devices[0])
    assert len(pings) == 2 and position[1] == pings[1][1]
    assert group_sizes == [1, 1]


def test_a_failed_group_fails_each_request_and_stores_nothing(monkeypatch, phones):
    (devices, tokens), _ = phones
    monkeypatch.setattr(fast, "GROUP_COMMIT", True)
    monkeypatch.setattr(group, "WRITE_GROUP", group.WRITE_GROUP.replace("tracking_ping", "nope"))

    async def main():
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                return await asyncio.gather(
                    *(
                        client.get(f"/ingest/osmand/{token}/", params=script(i)[0])
                        for i, token in enumerate(tokens[:4])
                    )
                )
        finally:
            await fast.close_pools()

    assert [r.status_code for r in asyncio.run(main())] == [500] * 4
    assert all(stored(device)[0] == [] for device in devices[:4])
