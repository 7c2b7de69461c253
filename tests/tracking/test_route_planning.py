"""Route planning with VROOM: capacities, promised windows, shifts, clear refusals, the API and
the command, and tenancy."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command

from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import DriverFactory, HubFactory, ShipmentFactory, VehicleFactory
from tracking.models import Route, Stop
from tracking.services.route_planning import VehicleShift, plan_routes

pytestmark = pytest.mark.django_db

DAY = date(2026, 12, 1)
T9 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 09:00 in Santiago
URL = "/api/v1/routes/plan/"


def shift(start_h=0, end_h=9):
    return T9 + timedelta(hours=start_h), T9 + timedelta(hours=end_h)


@pytest.fixture
def depot(tenant):
    hub = HubFactory(
        organization=tenant.organization, code="LSR", location=Point(-71.2489, -29.9045, srid=4326)
    )
    rng = random.Random(5)
    shipments = []
    for n in range(24):
        start = T9 + timedelta(hours=rng.choice([0, 1, 3, 5]))
        shipments.append(
            ShipmentFactory(
                organization=tenant.organization,
                carrier=tenant.carrier,
                hub=hub,
                status="at_hub",
                reference=f"P-{n}",
                parcel_count=rng.choice([1, 1, 2]),
                location=Point(
                    -71.2489 + rng.uniform(-0.03, 0.03),
                    -29.9045 + rng.uniform(-0.03, 0.03),
                    srid=4326,
                ),
                promised_window_start=start,
                promised_window_end=start + timedelta(hours=3),
            )
        )
    fleet = []
    for _n in range(3):
        vehicle = VehicleFactory(
            organization=tenant.organization, carrier=tenant.carrier, capacity_parcels=14
        )
        driver = DriverFactory(organization=tenant.organization, carrier=tenant.carrier)
        fleet.append((vehicle, driver))
    return hub, shipments, fleet


def shifts(fleet, start_h=0, end_h=9):
    return [VehicleShift(v, d, *shift(start_h, end_h)) for v, d in fleet]


def plan(tenant, hub, fleet_shifts, **kwargs):
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        return plan_routes(actor=actor, hub=hub, date=DAY, vehicles=fleet_shifts, **kwargs)


def test_capacities_and_windows_are_respected(tenant, depot):
    hub, shipments, fleet = depot
    result = plan(tenant, hub, shifts(fleet))
    assert result.totals["matrix"] == "straight_line"
    assert_valid_plan(tenant, result)


def test_on_the_road_network_the_plan_is_valid_too(tenant, depot):
    """Road travel times (the contracted graph's matrix), VROOM then PyVRP, and street
    geometry searched leg by leg within the matrix times."""
    call_command("load_road_network", "--demo", "coquimbo", "--if-missing", "--no-progress")
    hub, shipments, fleet = depot
    result = plan(tenant, hub, shifts(fleet))
    assert result.totals["matrix"] == "road:coquimbo"
    assert_valid_plan(tenant, result)


def assert_valid_plan(tenant, result):
    assert result.unassigned == []
    assert result.totals["shipments"] == 24 and result.totals["windows_met_pct"] == 100.0
    with organization_scope(tenant.organization):
        routes = list(Route.objects.filter(date=DAY).order_by("code"))
        assert [r.code for r in routes] == [f"LSR-P{n:02d}" for n in range(1, len(routes) + 1)]
        for route in routes:
            stops = list(route.stops.order_by("sequence").prefetch_related("shipments"))
            load = sum(s.parcel_count for stop in stops for s in stop.shipments.all())
            assert load <= route.vehicle.capacity_parcels
            arrivals = [stop.planned_arrival for stop in stops]
            assert arrivals == sorted(arrivals)
            for stop in stops:
                for shipment in stop.shipments.all():
                    assert shipment.promised_window_start <= stop.planned_arrival
                    assert stop.planned_arrival <= shipment.promised_window_end
            assert route.planned_geometry.num_points >= len(stops) + 2
            assert route.planned_distance_m > 0


def test_what_cannot_fit_is_unassigned_with_a_reason(tenant, depot):
    hub, shipments, fleet = depot
    late = shipments[0]
    late.promised_window_start = T9 + timedelta(hours=20)
    late.promised_window_end = T9 + timedelta(hours=21)
    late.save()
    result = plan(tenant, hub, shifts(fleet[:1]))  # one van of 14 parcels for ~30
    reasons = {u["reference"]: u["reason"] for u in result.unassigned}
    assert "P-0" in reasons and "window" in reasons["P-0"]
    assert any("room" in r or "capacity" in r for r in reasons.values())
    assert result.totals["shipments"] + result.totals["unassigned_shipments"] == 24


def test_a_dry_run_stores_nothing(tenant, depot):
    hub, _shipments, fleet = depot
    result = plan(tenant, hub, shifts(fleet), dry_run=True)
    assert result.routes and isinstance(result.routes[0], dict)
    with organization_scope(tenant.organization):
        assert not Route.objects.filter(date=DAY).exists()


def test_refusals_are_explained(tenant, depot):
    from control_tower.errors import DomainError

    hub, shipments, fleet = depot
    with pytest.raises(DomainError, match="at least one vehicle"):
        plan(tenant, hub, [])
    with pytest.raises(DomainError, match="ends before it starts"):
        plan(tenant, hub, shifts(fleet, 5, 2))
    other_carrier_driver = DriverFactory(organization=tenant.organization)
    with pytest.raises(DomainError, match="different carriers"):
        plan(tenant, hub, [VehicleShift(fleet[0][0], other_carrier_driver, *shift())])
    empty_hub = HubFactory(
        organization=tenant.organization, code="EMPTY", location=Point(-71.3, -29.95, srid=4326)
    )
    with pytest.raises(DomainError, match="Nothing to plan"):
        plan(tenant, empty_hub, shifts(fleet))
    with pytest.raises(DomainError, match="No shipment fits"):
        plan(tenant, hub, shifts(fleet, 12, 13))  # a shift after every window


def test_planned_shipments_are_not_planned_twice(tenant, depot):
    hub, _shipments, fleet = depot
    plan(tenant, hub, shifts(fleet))
    from control_tower.errors import DomainError

    with pytest.raises(DomainError, match="Nothing to plan"):
        plan(tenant, hub, shifts(fleet))


def body(hub, fleet, **extra):
    start, end = shift()
    return {
        "hub": hub.pk,
        "date": DAY.isoformat(),
        "vehicles": [
            {
                "vehicle": v.pk,
                "driver": d.pk,
                "shift_start": start.isoformat(),
                "shift_end": end.isoformat(),
            }
            for v, d in fleet
        ],
        **extra,
    }


def test_the_api_plans_for_dispatchers_only(tenant, depot, api_client_for):
    hub, _shipments, fleet = depot
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    assert ops.post(URL, body(hub, fleet), format="json").status_code == 403
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    dry = dispatcher.post(URL, body(hub, fleet, dry_run=True), format="json")
    assert dry.status_code == 200 and dry.json()["totals"]["shipments"] == 24
    response = dispatcher.post(URL, body(hub, fleet), format="json")
    assert response.status_code == 201, response.content
    payload = response.json()
    assert payload["unassigned"] == [] and len(payload["routes"]) == payload["totals"]["routes"]
    with organization_scope(tenant.organization):
        assert Stop.objects.filter(route__date=DAY).count() == payload["totals"]["stops"]


def test_another_organizations_objects_cannot_be_planned(
    tenant, other_tenant, depot, api_client_for, api_key_for
):
    hub, shipments, fleet = depot
    attacker_vehicle = VehicleFactory(
        organization=other_tenant.organization, carrier=other_tenant.carrier
    )
    attacker_driver = DriverFactory(
        organization=other_tenant.organization, carrier=other_tenant.carrier
    )
    start, end = shift()
    for client in (
        api_client_for(other_tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(other_tenant)),
    ):
        # Our hub with their fleet, then their hub with our shipments and our fleet.
        response = client.post(
            URL,
            {
                "hub": hub.pk,
                "date": DAY.isoformat(),
                "vehicles": [
                    {
                        "vehicle": attacker_vehicle.pk,
                        "driver": attacker_driver.pk,
                        "shift_start": start.isoformat(),
                        "shift_end": end.isoformat(),
                    }
                ],
            },
            format="json",
        )
        assert response.status_code == 400 and "hub" in response.json()["fields"]
        their_hub = HubFactory(organization=other_tenant.organization)
        response = client.post(
            URL, {**body(their_hub, fleet), "shipments": [shipments[0].pk]}, format="json"
        )
        assert response.status_code == 400
        assert "vehicles" in response.json()["fields"]
    with organization_scope(tenant.organization):
        assert not Route.objects.filter(date=DAY).exists()


def test_the_command_prints_the_totals(tenant, depot):
    out = StringIO()
    call_command(
        "plan_routes",
        "--org",
        tenant.organization.slug,
        "--hub",
        "LSR",
        "--date",
        DAY.isoformat(),
        "--dry-run",
        stdout=out,
    )
    text = out.getvalue()
    assert "windows_met_pct" in text and "shipments" in text


def test_a_stop_limit_spreads_the_work(tenant, depot):
    hub, _shipments, fleet = depot
    result = plan(tenant, hub, shifts(fleet), max_stops_per_route=9, dry_run=True)
    assert len(result.routes) == 3
    assert all(len(route["stops"]) <= 9 for route in result.routes)


def test_an_explicit_list_cannot_plan_a_shipment_already_on_an_open_route(tenant, depot):
    from tracking.errors import InvalidInput

    hub, shipments, fleet = depot
    plan(tenant, hub, shifts(fleet), shipments=shipments[:4])
    with organization_scope(tenant.organization):
        before = Route.objects.count()
    for dry_run in (True, False):
        with pytest.raises(InvalidInput, match="P-2 is already on an open route"):
            plan(tenant, hub, shifts(fleet), shipments=shipments[2:6], dry_run=dry_run)
    with organization_scope(tenant.organization):
        assert Route.objects.count() == before


def test_the_api_names_the_shipment_already_on_an_open_route(tenant, depot, api_client_for):
    hub, shipments, fleet = depot
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    first = dispatcher.post(URL, body(hub, fleet, shipments=[shipments[0].pk]), format="json")
    assert first.status_code == 201, first.content
    again = dispatcher.post(
        URL, body(hub, fleet, shipments=[shipments[0].pk, shipments[1].pk]), format="json"
    )
    assert again.status_code == 400
    assert again.json()["error"] == "validation_error"
    assert "P-0 is already on an open route" in str(again.json()["fields"]["shipments"])


def test_a_customer_who_ordered_twice_for_different_windows_gets_two_visits(tenant, depot):
    hub, shipments, fleet = depot
    # The same door as P-1, once in the morning and once in the afternoon (no overlap): one
    # stop could not keep both windows; a third order overlapping the morning joins it.
    morning, evening = shipments[1], shipments[2]
    evening.location = morning.location
    evening.promised_window_start = morning.promised_window_end + timedelta(hours=2)
    evening.promised_window_end = evening.promised_window_start + timedelta(hours=3)
    evening.save()
    overlapping = shipments[3]
    overlapping.location = morning.location
    overlapping.promised_window_start = morning.promised_window_start
    overlapping.promised_window_end = morning.promised_window_end + timedelta(hours=1)
    overlapping.save()
    result = plan(tenant, hub, shifts(fleet))
    assert_valid_plan(tenant, result)
    with organization_scope(tenant.organization):
        visits = Stop.objects.filter(route__date=DAY, location=morning.location)
        together = sorted(sorted(s.reference for s in v.shipments.all()) for v in visits)
    assert together == [sorted([morning.reference, overlapping.reference]), [evening.reference]]
