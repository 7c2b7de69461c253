"""`GET /api/v1/alerts/{id}/suggestions/`: the reassignment with the least added driving time
(priced like the reassignment itself, on a real road network), only over routes the caller may
see; the driver's phone; notifying the customer shown disabled; 404 for alerts the caller cannot
see. And `GET /api/v1/alerts/{id}/assignees/`: who the alert may be handed to."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from exceptions.services import alert_raise
from tests.factories import CarrierFactory, HubFactory
from tests.portal.road_loop import grid, load_loop_network
from tests.portal.test_reassign import MOVED, make_route
from tracking.models import Stop

pytestmark = pytest.mark.django_db


def url(alert, what="suggestions") -> str:
    return f"/api/v1/alerts/{alert.pk}/{what}/"


def stall_on(stop):
    return alert_raise(
        organization_id=stop.organization_id,
        kind="stalled",
        subject_type="route",
        subject_id=stop.route_id,
        severity="high",
        started_at=timezone.now() - timedelta(minutes=12),
        title="Stalled",
        route=stop.route,
        carrier_id=stop.route.carrier_id,
    )


@pytest.fixture
def world(tenant):
    """SRC (own carrier) stalls before its first open stop, MOVED. NEAR and FAR (own carrier)
    and RIVAL (another carrier, its stops right around MOVED) could take it."""
    load_loop_network()
    org = tenant.organization
    hub = HubFactory(organization=org, location=grid(0, 0))
    source = make_route(tenant, "SRC", [MOVED, (3, 1)], hub=hub)
    near = make_route(tenant, "NEAR", [(2, 0), (1, 0)], hub=hub)
    far = make_route(tenant, "FAR", [(0, 1), (1, 1)], hub=hub)
    rival_carrier = CarrierFactory(organization=org, code="rival")
    rival = make_route(tenant, "RIVAL", [(1.3, 0), (1.1, 0)], carrier=rival_carrier, hub=hub)
    with organization_scope(org):
        moving = source.stops.order_by("sequence").first()
        source.driver.phone = "+56 9 1234 5678"
        source.driver.save(update_fields=["phone"])
        rival.driver.phone = ""
        rival.driver.save(update_fields=["phone"])
        alert = stall_on(moving)
        rival_alert = stall_on(rival.stops.order_by("sequence").first())
    return {"alert": alert, "rival_alert": rival_alert, "stop": moving, "near": near,
            "far": far, "rival": rival}  # fmt: skip


def reassignments(body):
    return [a for a in body["actions"] if a["kind"] == "reassign_stop"]


def test_the_best_route_is_the_one_with_least_added_time_and_the_reassignment_agrees(
    world, tenant, api_client_for
):
    api = api_client_for(tenant.user(Role.DISPATCHER))
    response = api.get(url(world["alert"]))
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["stop"] == world["stop"].pk and body["route"] == world["stop"].route_id
    options = reassignments(body)
    assert {o["route_code"] for o in options} == {"NEAR", "FAR", "RIVAL"}
    added = [o["added_time_s"] for o in options]
    assert added == sorted(added) and added[0] < added[-1]
    best = options[0]
    # Nothing moved by asking.
    assert Stop.dangerously_unscoped.get(pk=world["stop"].pk).route_id == body["route"]

    # The console runs the best one through the reassign endpoint: same route, same price.
    moved = api.post(
        f"/api/v1/stops/{best['stop']}/reassign/", {"route": best["route"]}, format="json"
    )
    assert moved.status_code == 200, moved.json()
    assert moved.json()["insertion_cost_s"] == best["added_time_s"]
    assert moved.json()["position"] == best["position"]
    # Every other route costs more (the best is the cheapest insertion of all).
    assert all(o["added_time_s"] >= best["added_time_s"] for o in options[1:])


def test_driver_phone_and_customer_notification(world, tenant, api_client_for):
    body = api_client_for(tenant.user(Role.DISPATCHER)).get(url(world["alert"])).json()
    by_kind = {a["kind"]: a for a in body["actions"]}
    assert by_kind["call_driver"]["href"] == "tel:+56912345678"
    assert by_kind["call_driver"]["enabled"] is True
    assert by_kind["notify_customer"] == {
        "kind": "notify_customer",
        "enabled": False,
        "label": "Notify the customer",
        "reason": "Notifications are not set up yet.",
    }
    # No phone, no call.
    other = api_client_for(tenant.user(Role.DISPATCHER)).get(url(world["rival_alert"])).json()
    assert "call_driver" not in {a["kind"] for a in other["actions"]}


def test_a_carrier_user_never_gets_other_carriers_routes_nor_their_alerts(
    world, tenant, api_client_for
):
    api = api_client_for(tenant.user(Role.CARRIER_USER))
    response = api.get(url(world["alert"]))
    assert response.status_code == 200, response.json()
    assert {o["route_code"] for o in reassignments(response.json())} == {"NEAR", "FAR"}
    assert api.get(url(world["rival_alert"])).status_code == 404
    assert api.get(url(world["rival_alert"], "assignees")).status_code == 404


def test_other_tenants_alerts_are_404(world, other_tenant, api_client_for):
    api = api_client_for(other_tenant.user(Role.DISPATCHER))
    for what in ("suggestions", "assignees"):
        response = api.get(url(world["alert"], what))
        assert response.status_code == 404
        assert "detail" in response.json() or "error" in response.json()


def test_assignees_are_the_members_who_may_work_the_alert(world, tenant, api_client_for):
    api = api_client_for(tenant.user(Role.DISPATCHER))
    people = api.get(url(world["alert"], "assignees")).json()
    emails = {p["email"] for p in people}
    assert tenant.user(Role.DISPATCHER).email in emails
    assert tenant.user(Role.CARRIER_USER).email in emails  # the alert is on their carrier
    assert tenant.user(Role.DRIVER).email not in emails
    rival = {p["email"] for p in api.get(url(world["rival_alert"], "assignees")).json()}
    assert tenant.user(Role.CARRIER_USER).email not in rival


def test_a_carrier_user_is_offered_only_their_carriers_members(world, tenant, api_client_for):
    api = api_client_for(tenant.user(Role.CARRIER_USER))
    people = api.get(url(world["alert"], "assignees")).json()
    assert [p["email"] for p in people] == [tenant.user(Role.CARRIER_USER).email]
