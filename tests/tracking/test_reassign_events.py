"""A reassignment's domain events: each moved or renumbered stop's `stop.status_changed` and
one `route.changed` per route (`reasons: ["reassigned"]`), in the reassignment's transaction."""

from __future__ import annotations

import pytest

from control_tower.events.models import OutboxEvent
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import CarrierFactory, HubFactory
from tests.portal.road_loop import grid, load_loop_network
from tests.portal.test_reassign import MOVED, make_route, url
from tracking.models import Stop

pytestmark = pytest.mark.django_db


def test_a_reassignment_emits_stop_and_route_events_for_both_routes(tenant, api_client_for):
    load_loop_network()
    hub = HubFactory(organization=tenant.organization, location=grid(0, 0))
    source = make_route(tenant, "SRC", [MOVED, (3, 1)], hub=hub)
    other_carrier = CarrierFactory(organization=tenant.organization, code="other-fleet")
    target = make_route(tenant, "TGT", [(1, 1), (2, 0)], carrier=other_carrier, hub=hub)
    with organization_scope(tenant.organization):
        moving = source.stops.order_by("sequence").first()
    OutboxEvent.dangerously_unscoped.all().delete()  # the set-up's own events

    response = api_client_for(tenant.user(Role.DISPATCHER)).post(
        url(moving), {"route": target.pk}, format="json"
    )
    assert response.status_code == 200, response.json()

    routes = OutboxEvent.dangerously_unscoped.filter(type="route.changed").order_by("id")
    assert [(r.aggregate_id, r.payload["reasons"]) for r in routes] == [
        (str(source.pk), ["reassigned"]),
        (str(target.pk), ["reassigned"]),
    ]
    assert routes[1].carrier_id == other_carrier.pk
    stops = OutboxEvent.dangerously_unscoped.filter(type="stop.status_changed")
    moved = [s for s in stops if s.payload["id"] == moving.pk]
    assert len(moved) == 1
    assert moved[0].aggregate_id == str(target.pk) and moved[0].payload["route"] == target.pk
    # Every stop whose route or sequence changed has exactly one event, with its new sequence.
    for event in stops:
        stop = Stop.dangerously_unscoped.get(pk=event.payload["id"])
        assert (event.payload["route"], event.payload["sequence"]) == (
            stop.route_id,
            stop.sequence,
        )
    assert len({s.payload["id"] for s in stops}) == stops.count()
