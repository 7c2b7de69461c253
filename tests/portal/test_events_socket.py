"""The live events websocket over the real channels_redis layer: who may connect, and that
events reach only the right organization (and carrier)."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from control_tower.asgi import application
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import CarrierFactory, ShipmentFactory
from tracking.services import shipment_transition

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(cookie: bytes | None = None, origin=b"http://testserver"):
    headers = [(b"origin", origin)]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/v1/events/", headers=headers)


def transition(tenant, shipment, status):
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        shipment_transition(shipment=shipment, to_status=status, actor=actor)


def test_anonymous_and_drivers_are_refused(tenant):
    driver_cookie = session_cookie(tenant.user(Role.DRIVER))

    async def run():
        anonymous = communicator()
        connected, code = await anonymous.connect()
        assert not connected and code == 4401
        driver = communicator(driver_cookie)
        connected, code = await driver.connect()
        assert not connected and code == 4403

    async_to_sync(run)()


def test_foreign_origin_is_refused(tenant):
    cookie = session_cookie(tenant.user(Role.DISPATCHER))

    async def run():
        socket = communicator(cookie, origin=b"http://evil.example")
        connected, _ = await socket.connect()
        assert not connected

    async_to_sync(run)()


def test_events_reach_only_their_organization(tenant, other_tenant):
    ours = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    theirs = ShipmentFactory(organization=other_tenant.organization, carrier=other_tenant.carrier)
    cookie = session_cookie(tenant.user(Role.DISPATCHER))

    async def run():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        hello = await socket.receive_json_from(timeout=5)
        assert hello["v"] == 1 and hello["type"] == "hello"
        assert hello["data"]["organization"] == "acme" and isinstance(hello["data"]["seq"], int)
        await database_sync_to_async(transition)(other_tenant, theirs, "at_hub")
        await database_sync_to_async(transition)(tenant, ours, "at_hub")
        event = await socket.receive_json_from(timeout=5)
        assert event["v"] == 1 and event["type"] == "shipment.status"
        assert event["seq"] == hello["data"]["seq"] + 1
        assert event["data"]["id"] == ours.pk and event["data"]["status"] == "at_hub"
        assert await socket.receive_nothing(timeout=0.5)
        await socket.send_json_to({"type": "ping"})
        assert await socket.receive_json_from(timeout=5) == {"v": 1, "type": "pong"}
        await socket.disconnect()

    async_to_sync(run)()


def test_carrier_user_gets_only_their_carriers_events(tenant):
    other_carrier = CarrierFactory(organization=tenant.organization)
    mine = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    not_mine = ShipmentFactory(organization=tenant.organization, carrier=other_carrier)
    cookie = session_cookie(tenant.user(Role.CARRIER_USER))

    async def run():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=5)  # hello
        await database_sync_to_async(transition)(tenant, not_mine, "at_hub")
        await database_sync_to_async(transition)(tenant, mine, "at_hub")
        event = await socket.receive_json_from(timeout=5)
        assert event["data"]["id"] == mine.pk
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()

    async_to_sync(run)()


def session_cookie_for(user, organization_slug: str) -> bytes:
    client = Client()
    client.force_login(user)
    session = client.session
    session["organization_slug"] = organization_slug
    session.save()
    return f"sessionid={session.session_key}".encode()


def test_a_member_of_another_organization_is_refused(tenant, other_tenant):
    # A globex dispatcher whose session asks for acme: signed in, but not a member.
    cookie = session_cookie_for(other_tenant.user(Role.DISPATCHER), "acme")

    async def run():
        socket = communicator(cookie)
        connected, code = await socket.connect()
        assert not connected and code == 4403

    async_to_sync(run)()


def test_deltas_arrive_in_order_with_consecutive_seq(tenant):
    shipments = [
        ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier) for _ in range(5)
    ]
    cookie = session_cookie(tenant.user(Role.DISPATCHER))

    async def run():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        hello = await socket.receive_json_from(timeout=5)
        for shipment in shipments:
            await database_sync_to_async(transition)(tenant, shipment, "at_hub")
        events = [await socket.receive_json_from(timeout=5) for _ in shipments]
        assert [e["data"]["id"] for e in events] == [s.pk for s in shipments]
        first = hello["data"]["seq"] + 1
        assert [e["seq"] for e in events] == list(range(first, first + len(shipments)))
        await socket.disconnect()

    async_to_sync(run)()


def test_a_revoked_membership_closes_the_socket_at_once(tenant):
    from control_tower.services import membership_delete

    owner = actor_for_membership(tenant.members[Role.OWNER])
    cookie = session_cookie(tenant.user(Role.DISPATCHER))

    def revoke():
        with organization_scope(tenant.organization):
            membership_delete(actor=owner, membership=tenant.members[Role.DISPATCHER])

    async def run():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=5)  # hello
        await database_sync_to_async(revoke)()
        closed = await socket.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4403}

    async_to_sync(run)()


def test_memberships_are_rechecked_periodically(tenant, settings):
    from control_tower.models import Membership

    settings.CONSOLE_MEMBERSHIP_RECHECK_S = 0.2
    carrier_user = tenant.members[Role.CARRIER_USER]
    cookie = session_cookie(carrier_user.user)
    other_carrier = CarrierFactory(organization=tenant.organization)

    def move_to_another_carrier():
        # Not through the service (no notification): only the periodic re-check can see it.
        Membership.dangerously_unscoped.filter(pk=carrier_user.pk).update(carrier=other_carrier)

    async def run():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=5)  # hello
        assert await socket.receive_nothing(timeout=0.6)  # re-checked, still allowed
        await database_sync_to_async(move_to_another_carrier)()
        closed = await socket.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4403}

    async_to_sync(run)()
