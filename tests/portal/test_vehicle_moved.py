"""`vehicle.moved` over the real channels_redis layer: keyed by vehicle, coalesced per vehicle
(leading edge at once, the newest position on the trailing edge), carrier-narrowed, sent as
items of `vehicles.moved` batches (tests/portal/test_vehicles_batched.py: the batching)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from control_tower import realtime
from control_tower.asgi import application
from control_tower.tenancy.roles import Role
from tests.factories import CarrierFactory, DriverFactory, RouteFactory, VehicleFactory
from tests.portal.test_events_socket import communicator, session_cookie
from tracking.ingest import fast
from tracking.ingest.vehicles import clear_route_cache

pytestmark = pytest.mark.django_db(transaction=True)

NOW = int(time.time()) - 600


@pytest.fixture(autouse=True)
def _fresh_route_cache():
    clear_route_cache()
    yield
    clear_route_cache()


def osmand(i: int) -> dict:
    # One fix a second, ~11 m north each (plausible speed: not flagged).
    return {
        "id": "48241179",
        "lat": f"{-29.9045 + i * 0.0001:.6f}",
        "lon": "-71.2489",
        "timestamp": str(NOW + i),
        "speed": "10",
        "bearing": "0",
        "batt": "80",
    }


def items(messages: list[dict]) -> list[dict]:
    """The positions the `vehicles.moved` batches among `messages` carry, in order."""
    return [item for m in messages if m["type"] == "vehicles.moved" for item in m["data"]["items"]]


async def only_item(socket) -> dict:
    """The next message, which must be a batch of one position."""
    message = await socket.receive_json_from(timeout=5)
    assert message["type"] == "vehicles.moved" and len(message["data"]["items"]) == 1, message
    return message["data"]["items"][0]


async def collect(socket, *, seconds: float) -> list[dict]:
    """Everything that arrives within `seconds` (receive_nothing does not cancel the app, a
    receive timeout would)."""
    messages, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not await socket.receive_nothing(timeout=0.05, interval=0.01):
            messages.append(await socket.receive_json_from(timeout=1))
    return messages


def test_a_burst_of_pings_yields_at_most_two_messages_the_last_one_newest(tenant, device_for):
    vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    _device, token = device_for(tenant, vehicle=vehicle)
    cookie = session_cookie(tenant.user(Role.DISPATCHER))

    async def run():
        socket = communicator(cookie)
        assert (await socket.connect())[0]
        hello = await socket.receive_json_from(timeout=5)
        transport = httpx.ASGITransport(app=application)
        started = time.monotonic()
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for i in range(10):
                response = await c.get(f"/ingest/osmand/{token}/", params=osmand(i))
                assert response.status_code == 200
        assert time.monotonic() - started < 1.0
        messages = await collect(socket, seconds=2.5)
        moved = items(messages)
        assert 1 <= len(moved) <= 2
        assert all(m["id"] == vehicle.pk for m in moved)
        assert moved[-1]["lat"] == pytest.approx(-29.9045 + 9 * 0.0001)
        assert moved[-1]["speed_kmh"] == 18.5  # OsmAnd sends knots
        assert moved[-1]["battery"] == 80
        first = hello["data"]["seq"] + 1
        assert [m["seq"] for m in messages] == list(range(first, first + len(messages)))
        await socket.disconnect()
        await fast.close_pools()

    async_to_sync(run)()


def test_a_driver_only_phone_moves_the_vehicle_of_the_drivers_route_today(
    tenant, device_for, device_client_for
):
    driver = DriverFactory(organization=tenant.organization, carrier=tenant.carrier)
    vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    route = RouteFactory(
        organization=tenant.organization, carrier=tenant.carrier, driver=driver, vehicle=vehicle
    )
    _device, token = device_for(tenant, driver=driver)
    phone = device_client_for(token)
    cookie = session_cookie(tenant.user(Role.DISPATCHER))
    fix_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW))
    body = [{"time": fix_time, "lat": -29.91, "lon": -71.25, "accuracy": 5}]

    def post():  # the Django (sync) ingest path
        response = phone.post(
            "/api/v1/ingest/pings", json.dumps(body), content_type="application/json"
        )
        assert response.status_code == 200, response.content

    async def run():
        socket = communicator(cookie)
        assert (await socket.connect())[0]
        await socket.receive_json_from(timeout=5)  # hello
        await database_sync_to_async(post)()
        item = await only_item(socket)  # the sync path sends a batch of one
        assert item["id"] == vehicle.pk and item["route"] == route.pk
        assert item["lat"] == pytest.approx(-29.91)
        await socket.disconnect()

    async_to_sync(run)()


def test_a_carrier_user_gets_only_their_carriers_vehicles(tenant, device_for):
    other_carrier = CarrierFactory(organization=tenant.organization)
    ours = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    theirs = VehicleFactory(organization=tenant.organization, carrier=other_carrier)
    _d1, our_token = device_for(tenant, vehicle=ours)
    _d2, their_token = device_for(tenant, vehicle=theirs, carrier=other_carrier)
    cookie = session_cookie(tenant.user(Role.CARRIER_USER))

    async def run():
        socket = communicator(cookie)
        assert (await socket.connect())[0]
        await socket.receive_json_from(timeout=5)  # hello
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await c.get(f"/ingest/osmand/{their_token}/", params=osmand(0))
            await c.get(f"/ingest/osmand/{our_token}/", params=osmand(0))
        assert (await only_item(socket))["id"] == ours.pk
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        await fast.close_pools()

    async_to_sync(run)()


def test_a_parked_position_is_sent_once_whatever_the_number_of_flushers(tenant, settings):
    """Several web processes each run a flusher: the claim script hands a parked message to
    exactly one of them."""
    settings.CONSOLE_COALESCE_WINDOW_S = 0.3
    organization_id = tenant.organization.pk
    cookie = session_cookie(tenant.user(Role.DISPATCHER))

    def offer(lat):
        return realtime.publish_coalesced_sync_now(
            organization_id=organization_id,
            batch_type="vehicles.moved",
            key=424242,
            data={"id": 424242, "lat": lat},
        )

    async def run():
        socket = communicator(cookie)
        assert (await socket.connect())[0]
        await socket.receive_json_from(timeout=5)  # hello
        assert offer(1.0) is True  # leading edge
        assert offer(2.0) is False  # parked
        assert offer(3.0) is False  # replaces the parked one
        await asyncio.sleep(0.4)
        sent = await asyncio.gather(*(realtime.flush_due() for _ in range(5)))
        assert sum(sent) <= 1  # the socket's own flusher may have claimed it already
        messages = await collect(socket, seconds=1.0)
        assert [m["lat"] for m in items(messages)] == [1.0, 3.0]
        await socket.disconnect()

    async_to_sync(run)()
