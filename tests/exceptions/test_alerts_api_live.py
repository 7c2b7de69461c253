"""Alerts on the live events socket (real channels_redis layer): `alert.raised` for a new alert,
`alert.updated` for every later change, carrying the alert's API representation, to the
organization and to the alert's carrier only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.utils import timezone

from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from exceptions.services import alert_acknowledge, alert_raise
from tests.factories import CarrierFactory, RouteFactory
from tests.portal.test_events_socket import communicator, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def raise_on(route):
    return alert_raise(
        organization_id=route.organization_id,
        kind="route_not_started",
        subject_type="route",
        subject_id=route.pk,
        severity="medium",
        started_at=timezone.now() - timedelta(minutes=25),
        title=f"Route {route.code} has not started",
        route=route,
        carrier_id=route.carrier_id,
    )


def acknowledge(tenant, alert):
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        return alert_acknowledge(actor=actor, alert_id=alert.pk)


def test_raised_then_updated_reach_the_organization(tenant, other_tenant):
    ours = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    theirs = RouteFactory(organization=other_tenant.organization, carrier=other_tenant.carrier)
    cookie = session_cookie(tenant.user(Role.DISPATCHER))

    async def run():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        hello = await socket.receive_json_from(timeout=5)
        await database_sync_to_async(raise_on)(theirs)
        alert = await database_sync_to_async(raise_on)(ours)
        raised = await socket.receive_json_from(timeout=5)
        assert raised["type"] == "alert.raised"
        assert raised["seq"] == hello["data"]["seq"] + 1
        assert raised["data"]["id"] == alert.pk and raised["data"]["state"] == "open"
        assert raised["data"]["route"] == ours.pk and raised["data"]["title"] == alert.title
        await database_sync_to_async(acknowledge)(tenant, alert)
        updated = await socket.receive_json_from(timeout=5)
        assert updated["type"] == "alert.updated"
        assert updated["data"]["id"] == alert.pk
        assert updated["data"]["state"] == "acknowledged"
        assert updated["data"]["acknowledged_by"]["id"] == tenant.user(Role.DISPATCHER).pk
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()

    async_to_sync(run)()


def test_carrier_user_gets_only_their_carriers_alerts(tenant):
    other_carrier = CarrierFactory(organization=tenant.organization)
    mine = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    not_mine = RouteFactory(organization=tenant.organization, carrier=other_carrier)
    cookie = session_cookie(tenant.user(Role.CARRIER_USER))

    async def run():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=5)  # hello
        await database_sync_to_async(raise_on)(not_mine)
        alert = await database_sync_to_async(raise_on)(mine)
        event = await socket.receive_json_from(timeout=5)
        assert event["type"] == "alert.raised"
        assert event["data"]["id"] == alert.pk and event["data"]["carrier"] == tenant.carrier.pk
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()

    async_to_sync(run)()
