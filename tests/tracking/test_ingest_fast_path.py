"""The device protocols (tracking/ingest/fast.py, their only implementation), driven through the
real ASGI application: what each stores, how it answers, the live push, and every other path
handed to Django."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import httpx
import pytest
from django.db import connection

from control_tower.asgi import application
from tracking.ingest import fast

pytestmark = pytest.mark.django_db(transaction=True)

NOW = int(time.time()) - 600  # ten minutes ago: not flagged as future
QUERY = {
    "id": "48241179",
    "lat": "-29.9045",
    "lon": "-71.2489",
    "timestamp": str(NOW),
    "speed": "10",
    "bearing": "90",
    "accuracy": "8",
    "batt": "77",
    "ignition": "true",
}
TRACCAR = {
    "location": {
        "timestamp": dt.datetime.fromtimestamp(NOW + 5, dt.UTC).isoformat(),
        "coords": {
            "latitude": -29.9046,
            "longitude": -71.2489,
            "accuracy": 5,
            "speed": -1,
            "heading": -1,
            "altitude": 5,
        },
        "is_moving": True,
        "battery": {"level": 0.5, "is_charging": False},
    },
    "device_id": "48241179",
}
OWNTRACKS = {
    "_type": "location",
    "lat": -29.9047,
    "lon": -71.2489,
    "tst": NOW + 10,
    "acc": 12,
    "vel": 36,
    "batt": 64,
    "bs": 2,
    "tid": "rk",
}


def run(*calls):
    """Send requests through the ASGI app on one fresh event loop; returns the responses."""

    async def main():
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                return [await call(client) for call in calls]
        finally:
            await fast.close_pools()

    return asyncio.run(main())


def rows(device) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT source, fix_time, ST_Y(location), speed_mps, heading_deg, battery_pct, "
            "charging, flags, attributes::text FROM tracking_ping WHERE device_id = %s "
            "ORDER BY fix_time",
            [device.pk],
        )
        return cursor.fetchall()


def test_each_protocol_is_stored_with_its_units_converted(tenant, device_for):
    """One request per protocol: what each sends ends up in our units (knots and km/h to m/s,
    a 0..1 battery fraction to percent, -1 as unknown), with the protocol's extras kept."""
    device, token = device_for(tenant)
    responses = run(
        lambda c: c.get(f"/ingest/osmand/{token}/", params=QUERY),
        lambda c: c.post(f"/ingest/osmand/{token}/", json=[TRACCAR]),
        lambda c: c.post("/ingest/owntracks/", json=OWNTRACKS, auth=("rk", token)),
    )
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.content for r in responses] == [b"", b"", b"[]"]
    osmand, traccar, owntracks = rows(device)
    assert osmand[0] == "osmand" and osmand[1] == dt.datetime.fromtimestamp(NOW, dt.UTC)
    assert osmand[2:7] == (-29.9045, 10 * 1852 / 3600, 90.0, 77, None)
    assert json.loads(osmand[8]) == {"device_id": "48241179", "ignition": "true"}
    assert traccar[0] == "traccar_json" and traccar[2:7] == (-29.9046, None, None, 50, False)
    assert owntracks[0] == "owntracks"
    assert owntracks[2:7] == (-29.9047, pytest.approx(10.0), None, 64, True)
    assert json.loads(owntracks[8]) == {"tid": "rk"}


def test_form_body_replay_and_last_position(tenant, device_for):
    device, token = device_for(tenant)
    form = {"id": "1", "lat": "-29.95", "lon": "-71.33", "timestamp": str(NOW)}
    responses = run(*[lambda c: c.post(f"/ingest/osmand/{token}/", data=form)] * 3)
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len(rows(device)) == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_Y(location) FROM tracking_deviceposition WHERE device_id = %s", [device.pk]
        )
        assert cursor.fetchone() == (-29.95,)


def test_errors_are_the_same_json_as_elsewhere(tenant, device_for, other_tenant):
    from carriers.services import device_revoke
    from control_tower.tenancy.scope import organization_scope

    device, token = device_for(tenant)
    theirs, their_token = device_for(other_tenant)
    with organization_scope(other_tenant.organization):
        device_revoke(device=theirs)
    bad, unknown, revoked, wrong_method, no_auth, bad_json = run(
        lambda c: c.get(f"/ingest/osmand/{token}/", params={"id": "1", "lat": "95", "lon": "1"}),
        lambda c: c.get("/ingest/osmand/ctd_0123456789_nope/", params=QUERY),
        lambda c: c.get(f"/ingest/osmand/{their_token}/", params=QUERY),
        lambda c: c.put(f"/ingest/osmand/{token}/"),
        lambda c: c.post("/ingest/owntracks/", json=OWNTRACKS, auth=("u", "wrong")),
        lambda c: c.post(
            f"/ingest/osmand/{token}/",
            content="{nope",
            headers={"content-type": "application/json"},
        ),
    )
    assert bad.status_code == 400
    assert bad.json()["fields"] == {"lat": ["Must be between -90 and 90."]}
    assert unknown.status_code == revoked.status_code == 404
    assert unknown.content == revoked.content
    assert wrong_method.status_code == 405
    assert no_auth.status_code == 401 and no_auth.headers["www-authenticate"].startswith("Basic")
    assert bad_json.status_code == 400 and "body" in bad_json.json()["fields"]
    assert rows(device) == []


def test_a_foreign_host_header_is_refused(tenant, device_for):
    device, token = device_for(tenant)

    async def call(client):
        return await client.get(
            f"/ingest/osmand/{token}/", params=QUERY, headers={"host": "evil.example"}
        )

    [response] = run(call)
    assert response.status_code == 400 and rows(device) == []


def test_other_paths_go_to_django(tenant):
    health, api = run(lambda c: c.get("/healthz"), lambda c: c.get("/api/v1/me/"))
    assert health.status_code == 200
    assert api.status_code == 401 and api.json()["error"] == "not_authenticated"


def test_a_rotated_token_stops_at_once_in_this_process(tenant, device_for):
    from carriers.services import device_rotate_token
    from control_tower.tenancy.scope import organization_scope

    device, token = device_for(tenant)
    assert run(lambda c: c.get(f"/ingest/osmand/{token}/", params=QUERY))[0].status_code == 200
    with organization_scope(tenant.organization):
        _device, new_token = device_rotate_token(device=device)
    old, new = run(
        lambda c: c.get(f"/ingest/osmand/{token}/", params=QUERY),
        lambda c: c.get(
            f"/ingest/osmand/{new_token}/", params={**QUERY, "timestamp": str(NOW + 100)}
        ),
    )
    assert (old.status_code, new.status_code) == (404, 200)


def test_the_position_is_pushed_to_the_organization_socket(tenant, other_tenant, device_for):
    from asgiref.sync import async_to_sync

    from control_tower.tenancy.roles import Role
    from tests.factories import VehicleFactory
    from tests.portal.test_events_socket import communicator, session_cookie

    # The console is keyed by vehicle (vehicles.moved, docs/REALTIME.md).
    vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    device, token = device_for(tenant, vehicle=vehicle)
    _theirs, their_token = device_for(other_tenant)
    cookie = session_cookie(tenant.user(Role.DISPATCHER))

    async def scenario():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=5)  # hello
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await c.get(f"/ingest/osmand/{their_token}/", params=QUERY)
            await c.get(f"/ingest/osmand/{token}/", params=QUERY)
        event = await socket.receive_json_from(timeout=5)  # a batch of one position
        assert event["type"] == "vehicles.moved"
        [item] = event["data"]["items"]
        assert item["id"] == vehicle.pk and item["lat"] == -29.9045
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        await fast.close_pools()

    async_to_sync(scenario)()
