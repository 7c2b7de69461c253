"""What recipients do through their tracking link reaches the console's socket (real Channels
with channels_redis, real services): "I'm not home", new instructions, a reschedule and a
rating become socket messages for the organization and the route's carrier, never for another
carrier's users or another organization, and never with the text the recipient typed."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import CarrierFactory, MembershipFactory, RouteFactory, stop_with_shipments
from tests.portal.test_events_socket import communicator, session_cookie
from tracking.services import customer_actions as actions
from tracking.services import shipment_transition, stop_arrive, stop_complete
from tracking.services.tracking_links import link_issue

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOMER_TYPES = {
    "stop.recipient_away",
    "shipment.customer_updated",
    "shipment.rescheduled",
    "shipment.rated",
}


@pytest.fixture(autouse=True)
def _fresh_limits():
    ratelimit_reset("track-action")
    yield
    ratelimit_reset("track-action")


class Scene:
    """Acme's route of today (its own fleet), in progress: stop 1 with our parcel, stop 2 with
    a parcel that will be delivered and rated. Links to both."""

    def __init__(self, tenant):
        self.org = tenant.organization
        with organization_scope(self.org):
            self.route = RouteFactory(
                organization=self.org, carrier=tenant.carrier, status="in_progress"
            )
            self.stop = stop_with_shipments(route=self.route, sequence=1)
            self.done_stop = stop_with_shipments(route=self.route, sequence=2)
            self.shipment = self.stop.shipments.get()
            self.delivered = self.done_stop.shipments.get()
            for shipment in (self.shipment, self.delivered):
                shipment_transition(shipment=shipment, to_status="out_for_delivery", actor=None)
            self.link, _ = link_issue(self.shipment, actor=None)
            self.delivered_link, _ = link_issue(self.delivered, actor=None)

    def deliver_second(self):
        with organization_scope(self.org):
            stop_arrive(stop=self.done_stop, actor=None)
            stop_complete(stop=self.done_stop, actor=None)


async def customer_messages(socket, *, quiet_s: float = 1.0) -> list[dict]:
    """Every customer message the socket receives until it stays quiet for `quiet_s`."""
    received = []
    # receive_nothing peeks; a timed-out receive would cancel the consumer.
    while not await socket.receive_nothing(timeout=quiet_s):
        message = await socket.receive_json_from(timeout=5)
        if message["type"] in CUSTOMER_TYPES:
            received.append(message)
    return received


def test_the_recipients_actions_reach_the_console_of_the_organization_and_the_carrier(
    tenant, other_tenant
):
    scene = Scene(tenant)
    scene.deliver_second()
    other_carrier = CarrierFactory(organization=tenant.organization)
    other_carrier_user = MembershipFactory(
        organization=tenant.organization, role=Role.CARRIER_USER, carrier=other_carrier
    ).user
    cookies = {
        "dispatcher": session_cookie(tenant.user(Role.DISPATCHER)),
        "carrier_user": session_cookie(tenant.user(Role.CARRIER_USER)),  # the route's carrier
        "other_carrier_user": session_cookie(other_carrier_user),
        "other_tenant": session_cookie(other_tenant.user(Role.DISPATCHER)),
    }

    def act():
        actions.customer_not_home(scene.link, key="away-key-0001")
        actions.customer_set_instructions(scene.link, text="Gate code 4711", key="text-key-0001")
        actions.customer_rate(scene.delivered_link, stars=4, comment="Kind", key="rate-key-0001")
        option = actions.customer_reschedule_options(scene.link)[0]
        actions.customer_reschedule(scene.link, option_id=option.id, key="move-key-0001")
        return option

    async def run():
        sockets = {}
        for name, cookie in cookies.items():
            socket = communicator(cookie)
            connected, _ = await socket.connect()
            assert connected, name
            assert (await socket.receive_json_from(timeout=5))["type"] == "hello"
            sockets[name] = socket
        option = await database_sync_to_async(act)()
        received = {name: await customer_messages(s) for name, s in sockets.items()}
        for socket in sockets.values():
            await socket.disconnect()
        return option, received

    option, received = async_to_sync(run)()

    for name in ("dispatcher", "carrier_user"):
        by_type = {m["type"]: m["data"] for m in received[name]}
        assert [m["type"] for m in received[name]] == [
            "stop.recipient_away",
            "shipment.customer_updated",
            "shipment.rated",
            "shipment.rescheduled",
        ], name
        away = by_type["stop.recipient_away"]
        assert away["id"] == scene.stop.pk and away["route"] == scene.route.pk
        assert away["shipment"] == scene.shipment.pk and away["sequence"] == 1
        assert away["reference"] == scene.shipment.reference and away["at"]
        assert by_type["shipment.customer_updated"] == {
            "id": scene.shipment.pk,
            "reference": scene.shipment.reference,
            "fields": ["delivery_instructions"],
            "at": by_type["shipment.customer_updated"]["at"],
        }
        moved = by_type["shipment.rescheduled"]
        assert moved["id"] == scene.shipment.pk
        assert moved["route"] == scene.route.pk and moved["stop"] == scene.stop.pk
        assert dt.datetime.fromisoformat(moved["window_start"]) == option.start
        assert dt.datetime.fromisoformat(moved["window_end"]) == option.end
        rated = by_type["shipment.rated"]
        assert rated["id"] == scene.delivered.pk and rated["stars"] == 4 and rated["at"]
        # What the recipient typed stays out of the socket.
        text = json.dumps(received[name])
        assert "4711" not in text and "Kind" not in text
        # Numbered like every other delta of the group.
        assert all(isinstance(m["seq"], int) for m in received[name])

    assert received["other_carrier_user"] == []
    assert received["other_tenant"] == []
