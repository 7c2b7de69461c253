"""Reassigning a stop (`POST /api/v1/stops/<id>/reassign/`, tracking/services/reassign.py):
the cheapest insertion on a real (small) road network, renumbering, re-planned geometry, the
shipments' carrier and chain of custody, ETAs recomputed by a real Celery worker, live events on
the real channel layer; and every refusal (400, 403, 404, 409) leaving nothing half stored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from control_tower.realtime import organization_group
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.conftest import wait_for
from tests.factories import (
    CarrierFactory,
    DriverFactory,
    HubFactory,
    RouteFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tests.portal.road_loop import grid, load_loop_network
from tracking.models import CustodyEntry, Route, Shipment, Stop
from tracking.roads.routing import straight_line_matrix
from tracking.services.custody import custody_verify

# The stop to move: closest to the north street as the crow flies, but it snaps to the south
# street at (1, 0), which the loop drives westbound on its way back to the hub.
MOVED = (1.2, 0.45)


def url(stop) -> str:
    return f"/api/v1/stops/{stop.pk}/reassign/"


def make_route(tenant, code, points, *, status="planned", carrier=None, hub=None):
    organization = tenant.organization
    carrier = carrier or tenant.carrier
    route = RouteFactory(
        organization=organization,
        code=code,
        carrier=carrier,
        hub=hub or HubFactory(organization=organization, location=grid(0, 0)),
        driver=DriverFactory(organization=organization, carrier=carrier),
        vehicle=VehicleFactory(organization=organization, carrier=carrier),
        status=status,
        planned_start=timezone.now() + timedelta(hours=1),
        planned_end=timezone.now() + timedelta(hours=5),
    )
    for sequence, (x, y) in enumerate(points, start=1):
        stop_with_shipments(route=route, sequence=sequence, location=grid(x, y))
    return route


def sequences(route) -> list[tuple[int, int]]:
    return list(
        Stop.dangerously_unscoped.filter(route=route)
        .order_by("sequence")
        .values_list("pk", "sequence")
    )


def state(*routes) -> tuple:
    """Everything a failed reassignment must leave untouched."""
    return (
        [sequences(r) for r in routes],
        [
            Route.dangerously_unscoped.filter(pk=r.pk)
            .values_list("planned_distance_m", "planned_geometry")
            .get()
            for r in routes
        ],
        CustodyEntry.dangerously_unscoped.count(),
        sorted(Shipment.dangerously_unscoped.values_list("pk", "carrier_id")),
    )


@pytest.fixture(autouse=True)
def _acme_in_scope(request):
    """Test bodies read the first tenant's rows through related managers; requests set their
    own scope from the caller. (Not with two tenants: their rows are set up unscoped.)"""
    if "other_tenant" in request.fixturenames:
        yield
        return
    with organization_scope(request.getfixturevalue("org")):
        yield


@pytest.fixture
def loop(db):
    return load_loop_network()


@pytest.fixture
def two_routes(tenant, loop):
    """Source: the stop to move and one after it. Target (another carrier, same hub): a stop on
    the north street, then one on the south street."""
    hub = HubFactory(organization=tenant.organization, location=grid(0, 0))
    source = make_route(tenant, "SRC", [MOVED, (3, 1)], hub=hub)
    other_carrier = CarrierFactory(organization=tenant.organization, code="other-fleet")
    target = make_route(tenant, "TGT", [(1, 1), (2, 0)], carrier=other_carrier, hub=hub)
    return source, target


def test_the_cheapest_insertion_on_the_roads_renumbers_replans_and_records_custody(
    tenant, two_routes, api_client_for
):
    source, target = two_routes
    moving = source.stops.order_by("sequence").first()
    staying = source.stops.order_by("sequence").last()
    parcels = list(moving.shipments.all())
    custody_before = {
        p.pk: CustodyEntry.dangerously_unscoped.filter(shipment=p).count() for p in parcels
    }

    response = api_client_for(tenant.user(Role.DISPATCHER)).post(
        url(moving), {"route": target.pk}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    # By road, after (2,0) on the way home costs nothing but the walk from the street; as the
    # crow flies it would have gone between the two target stops (position 2).
    assert body["position"] == 3
    assert body["insertion_cost_s"] < 120
    hub, first, second, new = grid(0, 0), grid(1, 1), grid(2, 0), grid(*MOVED)
    crow = straight_line_matrix([hub, first, second, new]).durations_s
    crow_costs = [crow[a][3] + crow[3][b] - crow[a][b] for a, b in ((0, 1), (1, 2), (2, 0))]
    assert crow_costs.index(min(crow_costs)) == 1  # straight lines disagree with the roads

    assert body["stop"]["id"] == moving.pk and body["stop"]["sequence"] == 3
    assert body["from_route"]["id"] == source.pk and body["to_route"]["id"] == target.pk
    assert body["from_route"]["stops"] == [{"id": staying.pk, "sequence": 1}]
    assert [s["id"] for s in body["to_route"]["stops"]][-1] == moving.pk
    assert [s["sequence"] for s in body["to_route"]["stops"]] == [1, 2, 3]
    assert body["to_route"]["stops_total"] == 3 and body["from_route"]["stops_total"] == 1
    assert sequences(source) == [(staying.pk, 1)]
    assert [pk for pk, _ in sequences(target)][-1] == moving.pk

    source.refresh_from_db()
    target.refresh_from_db()
    assert target.planned_geometry is not None and source.planned_geometry is not None
    # The target now also drives to (1, 0): its line passes there; the source's no longer does.
    assert any(
        abs(x - grid(1, 0).x) < 1e-9 and abs(y - grid(1, 0).y) < 1e-9
        for x, y in target.planned_geometry.coords
    )
    assert target.planned_end == target.planned_start + timedelta(seconds=target.planned_duration_s)
    moved = Stop.dangerously_unscoped.get(pk=moving.pk)
    assert moved.route_id == target.pk and moved.eta is None
    assert moved.planned_arrival is not None and moved.planned_arrival > target.planned_start

    for parcel in parcels:
        parcel.refresh_from_db()
        assert parcel.carrier_id == target.carrier_id
        entries = CustodyEntry.dangerously_unscoped.filter(shipment=parcel).order_by("sequence")
        assert entries.count() == custody_before[parcel.pk] + 1
        last = entries.last()
        assert last.kind == "handoff" and last.actor == tenant.user(Role.DISPATCHER).email
        assert last.details["action"] == "reassigned"
        assert last.details["from_route"]["code"] == "SRC"
        assert last.details["to_route"]["code"] == "TGT"
        assert last.details["to_route"]["vehicle"] == target.vehicle_id
        with organization_scope(tenant.organization):
            assert custody_verify(parcel).valid

    # Submitting it again: it is already there.
    again = api_client_for(tenant.user(Role.DISPATCHER)).post(
        url(moving), {"route": target.pk}, format="json"
    )
    assert again.status_code == 400 and again.json()["error"] == "same_route"


def test_a_given_position_counts_among_open_stops_after_the_finished_ones(
    tenant, two_routes, api_client_for
):
    source, target = two_routes
    done = target.stops.order_by("sequence").first()
    Stop.dangerously_unscoped.filter(pk=done.pk).update(status="completed")
    Route.dangerously_unscoped.filter(pk=target.pk).update(status="in_progress")
    moving = source.stops.order_by("sequence").first()

    response = api_client_for(tenant.user(Role.OWNER)).post(
        url(moving), {"route": target.pk, "position": 1}, format="json"
    )

    assert response.status_code == 200, response.json()
    order = [pk for pk, _ in sequences(target)]
    assert order[0] == done.pk and order[1] == moving.pk and len(order) == 3


def test_a_parcel_out_for_delivery_changes_custodian_to_the_new_driver(
    tenant, two_routes, api_client_for
):
    source, target = two_routes
    moving = source.stops.order_by("sequence").first()
    parcel = moving.shipments.get()
    Shipment.dangerously_unscoped.filter(pk=parcel.pk).update(status="out_for_delivery")

    response = api_client_for(tenant.user(Role.DISPATCHER)).post(
        url(moving), {"route": target.pk}, format="json"
    )

    assert response.status_code == 200
    last = CustodyEntry.dangerously_unscoped.filter(shipment=parcel).order_by("sequence").last()
    assert last.custodian == f"driver:{target.driver_id}:{target.driver.name}"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"stop": "arrived"}, "stop_not_open"),
        ({"stop": "completed"}, "stop_not_open"),
        ({"stop": "skipped"}, "stop_not_open"),
        ({"target": "completed"}, "route_closed"),
        ({"target": "cancelled"}, "route_closed"),
    ],
)
def test_closed_stops_and_routes_are_409_and_change_nothing(
    tenant, two_routes, api_client_for, change, code
):
    source, target = two_routes
    moving = source.stops.order_by("sequence").first()
    if "stop" in change:
        Stop.dangerously_unscoped.filter(pk=moving.pk).update(status=change["stop"])
    if "target" in change:
        Route.dangerously_unscoped.filter(pk=target.pk).update(status=change["target"])
    before = state(source, target)

    response = api_client_for(tenant.user(Role.DISPATCHER)).post(
        url(moving), {"route": target.pk}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"] == code and response.json()["detail"]
    assert state(source, target) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "route"),
        ({"route": "abc"}, "route"),
        ({"route": "TARGET", "position": 0}, "position"),
        ({"route": "TARGET", "position": 4}, "position"),
        ({"route": "TARGET", "position": "first"}, "position"),
        ({"route": "SOURCE"}, "route"),
    ],
)
def test_bad_bodies_are_400_naming_the_field_and_change_nothing(
    tenant, two_routes, api_client_for, body, field
):
    source, target = two_routes
    moving = source.stops.order_by("sequence").first()
    ids = {"TARGET": target.pk, "SOURCE": source.pk}
    body = {k: ids.get(v, v) for k, v in body.items()}
    before = state(source, target)

    response = api_client_for(tenant.user(Role.DISPATCHER)).post(url(moving), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()
    assert state(source, target) == before


@pytest.mark.parametrize("role", [Role.OPS_MANAGER, Role.DRIVER])
def test_ops_managers_and_drivers_may_not_reassign(tenant, two_routes, api_client_for, role):
    source, target = two_routes
    moving = source.stops.order_by("sequence").first()
    before = state(source, target)

    response = api_client_for(tenant.user(role)).post(
        url(moving), {"route": target.pk}, format="json"
    )

    assert response.status_code == 403 and response.json()["error"] == "permission_denied"
    assert state(source, target) == before


def test_an_api_key_needs_routes_write(tenant, two_routes, api_client_for, api_key_for):
    source, target = two_routes
    moving = source.stops.order_by("sequence").first()
    reader = api_client_for(key=api_key_for(tenant, scopes=["routes:read"]))
    writer = api_client_for(key=api_key_for(tenant, scopes=["routes:write"]))

    assert reader.post(url(moving), {"route": target.pk}, format="json").status_code == 403
    response = writer.post(url(moving), {"route": target.pk}, format="json")
    assert response.status_code == 200
    last = CustodyEntry.dangerously_unscoped.order_by("pk").last()
    assert last.actor.startswith("API key test")


def test_carrier_users_reassign_only_between_their_carriers_routes(tenant, loop, api_client_for):
    hub = HubFactory(organization=tenant.organization, location=grid(0, 0))
    mine_a = make_route(tenant, "MINE-A", [MOVED], hub=hub)
    mine_b = make_route(tenant, "MINE-B", [(1, 1)], hub=hub)
    theirs = make_route(
        tenant,
        "THEIRS",
        [(2, 0)],
        hub=hub,
        carrier=CarrierFactory(organization=tenant.organization, code="theirs"),
    )
    client = api_client_for(tenant.user(Role.CARRIER_USER))
    mine_stop = mine_a.stops.get()
    their_stop = theirs.stops.get()
    before = state(mine_a, mine_b, theirs)

    to_other = client.post(url(mine_stop), {"route": theirs.pk}, format="json")
    from_other = client.post(url(their_stop), {"route": mine_b.pk}, format="json")

    assert to_other.status_code == 404 and to_other.json()["error"] == "not_found"
    assert from_other.status_code == 404
    assert state(mine_a, mine_b, theirs) == before
    ok = client.post(url(mine_stop), {"route": mine_b.pk}, format="json")
    assert ok.status_code == 200, ok.json()
    assert Stop.dangerously_unscoped.get(pk=mine_stop.pk).route_id == mine_b.pk


def test_another_organization_gets_404_both_ways(tenant, other_tenant, two_routes, api_client_for):
    source, target = two_routes
    moving = Stop.dangerously_unscoped.filter(route=source).order_by("sequence").first()
    foreign = make_route(other_tenant, "FOREIGN", [(1, 1)])
    foreign_stop = Stop.dangerously_unscoped.get(route=foreign)
    before = state(source, target, foreign)

    theirs = api_client_for(other_tenant.user(Role.DISPATCHER))
    ours = api_client_for(tenant.user(Role.DISPATCHER))
    responses = [
        theirs.post(url(moving), {"route": foreign.pk}, format="json"),
        theirs.post(url(moving), {"route": target.pk}, format="json"),
        ours.post(url(moving), {"route": foreign.pk}, format="json"),
        ours.post(url(foreign_stop), {"route": target.pk}, format="json"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert all(r.json()["error"] == "not_found" for r in responses)
    assert state(source, target, foreign) == before


def test_without_a_road_network_the_insertion_uses_straight_lines(tenant, api_client_for):
    hub = HubFactory(organization=tenant.organization, location=grid(0, 0))
    source = make_route(tenant, "S", [MOVED], hub=hub)
    target = make_route(tenant, "T", [(1, 1), (2, 0)], hub=hub)
    moving = source.stops.get()

    response = api_client_for(tenant.user(Role.DISPATCHER)).post(
        url(moving), {"route": target.pk}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["position"] == 2  # what the crow-flies costs say (see above)
    assert response.json()["from_route"]["stops"] == []
    source.refresh_from_db()
    assert source.planned_geometry is None and source.planned_distance_m == 0


@pytest.mark.django_db(transaction=True)
def test_etas_appear_on_both_routes_and_both_routes_are_announced(
    tenant, celery_worker, api_client_for
):
    load_loop_network()
    hub = HubFactory(organization=tenant.organization, location=grid(0, 0))
    source = make_route(tenant, "S", [MOVED, (3, 1)], hub=hub, status="in_progress")
    target = make_route(tenant, "T", [(1, 1), (2, 0)], hub=hub)
    moving = source.stops.order_by("sequence").first()
    from tests.portal.live_listener import LiveListener

    listener = LiveListener(organization_group(tenant.organization.pk))  # deltas: Redis Pub/Sub

    response = api_client_for(tenant.user(Role.DISPATCHER)).post(
        url(moving), {"route": target.pk}, format="json"
    )

    assert response.status_code == 200
    wait_for(
        lambda: (
            not Stop.dangerously_unscoped.filter(
                route__in=[source, target], status="pending", eta__isnull=True
            ).exists()
        ),
        timeout=20,
    )
    moved = Stop.dangerously_unscoped.get(pk=moving.pk)
    assert moved.route_id == target.pk and moved.eta is not None
    assert moved.eta_earliest <= moved.eta <= moved.eta_latest

    changed, moves = set(), {}
    while len(changed) < 2 or moving.pk not in moves:
        event = listener.next_event(timeout=10)
        if event["type"] == "route.changed":
            changed.add(event["data"]["id"])
        if event["type"] == "stop.status":
            moves[event["data"]["id"]] = event["data"]
    assert changed == {source.pk, target.pk}
    assert moves[moving.pk]["route"] == target.pk and moves[moving.pk]["sequence"] == 3


@pytest.mark.django_db(transaction=True)
def test_opposite_reassignments_at_the_same_time_both_succeed(tenant):
    """A → B and B → A at once lock the same two routes: in id order, so neither deadlocks."""
    import threading

    from django.db import connection

    from control_tower.tenancy.actors import actor_for_membership
    from tracking.services.reassign import stop_reassign

    hub = HubFactory(organization=tenant.organization, location=grid(0, 0))
    first = make_route(tenant, "A", [MOVED, (3, 1)], hub=hub)
    second = make_route(tenant, "B", [(1, 1), (2, 0)], hub=hub)
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    a_stop = Stop.dangerously_unscoped.filter(route=first).order_by("sequence").first()
    b_stop = Stop.dangerously_unscoped.filter(route=second).order_by("sequence").first()
    barrier, errors = threading.Barrier(2), []

    def move(stop, target):
        try:
            with organization_scope(tenant.organization):
                barrier.wait()
                stop_reassign(actor=actor, stop=stop, to_route=target)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=move, args=(a_stop, second)),
        threading.Thread(target=move, args=(b_stop, first)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert Stop.dangerously_unscoped.get(pk=a_stop.pk).route_id == second.pk
    assert Stop.dangerously_unscoped.get(pk=b_stop.pk).route_id == first.pk
    for route in (first, second):
        assert [s for _, s in sequences(route)] == [1, 2]
