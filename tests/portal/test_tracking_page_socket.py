"""The tracking page's socket `/ws/v1/track/<token>/` over the real channels_redis layer and
the real ingest: the token authenticates it, it carries only its own shipment, and before
"next" it carries no position at all; once next, the driver's exact position on each ping."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from control_tower.asgi import application
from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.portal.test_tracking_page import link_for, make_route
from tracking.ingest.vehicles import clear_route_cache
from tracking.models import Stop
from tracking.services import shipment_transition
from tracking.services.stops import stop_complete
from tracking.services.tracking_links import link_revoke

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh():
    ratelimit_reset()
    clear_route_cache()
    yield
    clear_route_cache()
    ratelimit_reset()


def socket_for(token: str, origin=b"http://testserver"):
    return WebsocketCommunicator(
        application, f"/ws/v1/track/{token}/?lang=en", headers=[(b"origin", origin)]
    )


async def collect(socket, *, seconds: float) -> list[dict]:
    messages, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not await socket.receive_nothing(timeout=0.05, interval=0.01):
            messages.append(await socket.receive_json_from(timeout=1))
    return messages


def running(tenant, device_for):
    """A running route of three stops whose vehicle has a registered phone."""
    org = tenant.organization
    with organization_scope(org):
        route, stops = make_route(org)
        shipments = [stop.shipments.get() for stop in stops]
    _device, phone_token = device_for(tenant, vehicle=route.vehicle, carrier=route.carrier)
    return route, stops, shipments, phone_token


def ping(phone_token: str, lat: float, lon: float, seconds_ago: float = 0) -> None:
    from django.test import Client

    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))
    response = Client().post(
        "/api/v1/ingest/pings",
        json.dumps([{"time": at, "lat": lat, "lon": lon, "accuracy": 5}]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {phone_token}",
    )
    assert response.status_code == 200, response.content


def complete(tenant, stop) -> None:
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        stop_complete(stop=Stop.objects.get(pk=stop.pk), actor=actor)


def test_bad_tokens_are_closed_the_same_way(tenant):
    org = tenant.organization
    with organization_scope(org):
        _route, stops = make_route(org)
        shipment = stops[0].shipments.get()
    link, token = link_for(org, shipment)
    with organization_scope(org):
        link_revoke(link, actor="test")

    async def run():
        for bad in ("A" * 32, token, "nope"):
            socket = socket_for(bad)
            connected, _ = await socket.connect()
            assert connected
            closed = await socket.receive_output(timeout=5)
            assert closed == {"type": "websocket.close", "code": 4404}

    async_to_sync(run)()


def test_a_foreign_origin_is_refused(tenant):
    org = tenant.organization
    with organization_scope(org):
        _route, stops = make_route(org)
        shipment = stops[0].shipments.get()
    _link, token = link_for(org, shipment)

    async def run():
        connected, _ = await socket_for(token, origin=b"http://evil.example").connect()
        assert not connected

    async_to_sync(run)()


def test_before_next_no_position_then_exact_positions_once_next(tenant, device_for):
    route, stops, shipments, phone = running(tenant, device_for)
    _link, token = link_for(tenant.organization, shipments[1])  # the second stop

    async def run():
        socket = socket_for(token)
        assert (await socket.connect())[0]
        hello = await socket.receive_json_from(timeout=5)
        assert hello["type"] == "state" and hello["v"] == 1
        assert hello["data"]["reference"] == shipments[1].reference
        assert hello["data"]["live"] is False and hello["data"]["vehicle"] is None
        assert hello["data"]["stops_before_text"] == "1 stop before yours"
        # The driver moves while another customer is served: nothing exact reaches us.
        await database_sync_to_async(ping)(phone, -29.8811111, -71.2011111)
        before = await collect(socket, seconds=1.5)
        text = json.dumps(before)
        assert "-29.88111" not in text and "-71.20111" not in text
        assert "-29.88765" not in text  # the earlier position neither
        assert all(m["type"] == "state" for m in before)
        # The stop before ours is done: we are next, the state says so, with the driver.
        await database_sync_to_async(complete)(tenant, stops[0])
        messages = await collect(socket, seconds=2.0)
        live = [m for m in messages if m["type"] == "state" and m["data"]["live"]]
        assert live, messages
        assert live[-1]["data"]["stops_before_text"] == "You are the driver's next stop"
        assert live[-1]["data"]["vehicle"]["lat"] == pytest.approx(-29.88111, abs=1e-5)
        # A new ping reaches us as a position within 2 s.
        started = time.monotonic()
        await database_sync_to_async(ping)(phone, -29.8822222, -71.2022222)
        moved = []
        while not moved and time.monotonic() - started < 2.0:
            moved = [m for m in await collect(socket, seconds=0.2) if m["type"] == "vehicle"]
        assert moved, "no position within 2 s"
        assert moved[-1]["data"]["lat"] == pytest.approx(-29.88222, abs=1e-5)
        assert set(moved[-1]["data"]) == {"lat", "lon", "fix_time"}
        await socket.disconnect()

    async_to_sync(run)()


def test_a_socket_never_receives_another_shipments_or_tenants_data(
    tenant, other_tenant, device_for
):
    _route, stops, shipments, _phone = running(tenant, device_for)
    _r2, their_stops, theirs, their_phone = running(other_tenant, device_for)
    _link, token = link_for(tenant.organization, shipments[2])
    dispatcher = actor_for_membership(tenant.members[Role.DISPATCHER])
    their_dispatcher = actor_for_membership(other_tenant.members[Role.DISPATCHER])

    def move_others():
        with organization_scope(tenant.organization):  # same route, another customer
            shipment_transition(shipment=shipments[0], to_status="delivered", actor=dispatcher)
        with organization_scope(other_tenant.organization):
            for shipment in theirs:
                shipment_transition(
                    shipment=shipment, to_status="delivered", actor=their_dispatcher
                )

    async def run():
        socket = socket_for(token)
        assert (await socket.connect())[0]
        hello = await socket.receive_json_from(timeout=5)
        assert hello["data"]["reference"] == shipments[2].reference
        await database_sync_to_async(move_others)()
        await database_sync_to_async(ping)(their_phone, -29.95, -71.33)
        messages = await collect(socket, seconds=1.5)
        text = json.dumps(messages)
        for other in [*shipments[:2], *theirs]:
            assert other.reference not in text
        assert "-29.95" not in text and "-71.33" not in text
        assert all(m["type"] == "state" for m in messages)
        assert all(m["data"]["reference"] == shipments[2].reference for m in messages)
        await socket.disconnect()

    async_to_sync(run)()


def test_a_revoked_link_closes_its_open_socket(tenant, device_for, settings):
    settings.TRACKING_SOCKET_REFRESH_S = 0.3
    _route, _stops, shipments, _phone = running(tenant, device_for)
    link, token = link_for(tenant.organization, shipments[0])

    def revoke():
        with organization_scope(tenant.organization):
            link_revoke(link, actor="test")

    async def run():
        socket = socket_for(token)
        assert (await socket.connect())[0]
        await socket.receive_json_from(timeout=5)
        await database_sync_to_async(revoke)()
        closed = await socket.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": 4404}

    async_to_sync(run)()
