"""Planning with learned times: the defaults keep today's plan, slower times give later and
shorter routes inside the shifts, and an organization's trained ETA model becomes its planning
times by itself."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.gis.geos import Point

from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import (
    DriverFactory,
    EtaCalibrationFactory,
    EtaModelFactory,
    HubFactory,
    ShipmentFactory,
    VehicleFactory,
)
from tracking.models import Route
from tracking.roads.routing import travel_matrix
from tracking.services.planning_times import (
    DefaultTimes,
    hour_samples,
    learned_times,
    timed_matrix,
)
from tracking.services.route_planning import VehicleShift, plan_routes

pytestmark = pytest.mark.django_db

DAY = date(2026, 12, 1)
T9 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # 09:00 in Santiago
HUB = Point(-71.2489, -29.9045, srid=4326)


class SlowTimes:
    """Longer at the door and twice the free-flow time on the road."""

    label = "slow"
    late_margin_s = 0

    def service_s(self, *, address, parcels, location, local_hour):
        return 1200 + 60 * (parcels - 1)

    def travel_factor(self, *, local_hour, length_m, free_flow_s):
        return 2.0


@pytest.fixture
def depot(tenant):
    hub = HubFactory(organization=tenant.organization, code="LSR", location=HUB)
    rng = random.Random(7)
    for n in range(20):
        start = T9 + timedelta(hours=rng.choice([0, 1, 2]))
        ShipmentFactory(
            organization=tenant.organization,
            carrier=tenant.carrier,
            hub=hub,
            status="at_hub",
            reference=f"P-{n}",
            parcel_count=rng.choice([1, 1, 2]),
            location=Point(
                HUB.x + rng.uniform(-0.03, 0.03), HUB.y + rng.uniform(-0.03, 0.03), srid=4326
            ),
            promised_window_start=start,
            promised_window_end=start + timedelta(hours=4),
        )
    fleet = [
        (
            VehicleFactory(
                organization=tenant.organization, carrier=tenant.carrier, capacity_parcels=40
            ),
            DriverFactory(organization=tenant.organization, carrier=tenant.carrier),
        )
        for _ in range(2)
    ]
    return hub, [VehicleShift(v, d, T9, T9 + timedelta(hours=4)) for v, d in fleet]


def plan(tenant, hub, shifts, **kwargs):
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        return plan_routes(actor=actor, hub=hub, date=DAY, vehicles=shifts, **kwargs)


def stored_stops(tenant):
    with organization_scope(tenant.organization):
        return [
            (route, list(route.stops.order_by("sequence").prefetch_related("shipments")))
            for route in Route.objects.filter(date=DAY).order_by("code")
        ]


def assert_schedule(hub, route, stops, factor):
    """Each planned arrival is at least the previous departure plus the leg's free-flow time
    times `factor` (or the window's start: the van waits), and the route is back in its shift."""
    legs = travel_matrix([hub.location, *(s.location for s in stops)]).durations_s
    clock = route.planned_start
    for index, stop in enumerate(stops):
        drive = timedelta(seconds=legs[index][index + 1] * factor)
        earliest = max(clock + drive, stop.window_start) - timedelta(seconds=stop.sequence + 2)
        assert stop.planned_arrival >= earliest
        assert stop.window_start <= stop.planned_arrival <= stop.window_end
        clock = stop.planned_arrival + timedelta(seconds=stop.planned_service_s)
    assert route.planned_end <= T9 + timedelta(hours=4)


def test_without_a_model_the_plan_uses_the_default_times(tenant, depot):
    hub, shifts = depot
    result = plan(tenant, hub, shifts)
    assert result.totals["times"] == "default"
    for route, stops in stored_stops(tenant):
        for stop in stops:
            parcels = sum(s.parcel_count for s in stop.shipments.all())
            assert stop.planned_service_s == 180 + 20 * (parcels - 1)
        assert_schedule(hub, route, stops, factor=1.0)


def test_explicit_default_times_are_todays_assumptions(tenant, depot):
    hub, shifts = depot
    result = plan(tenant, hub, shifts, times=DefaultTimes(service_s=240, per_parcel_s=30))
    assert result.totals["times"] == "default" and result.unassigned == []
    for _route, stops in stored_stops(tenant):
        for stop in stops:
            parcels = sum(s.parcel_count for s in stop.shipments.all())
            assert stop.planned_service_s == 240 + 30 * (parcels - 1)
    matrix = travel_matrix([HUB, Point(HUB.x + 0.01, HUB.y, srid=4326)])
    assert timed_matrix(matrix, DefaultTimes(), [(9, 13), (9, 13)]) is matrix


def test_slower_times_give_later_arrivals_and_shorter_routes_inside_the_shifts(tenant, depot):
    hub, shifts = depot
    default = plan(tenant, hub, shifts, dry_run=True, times=DefaultTimes())
    slow = plan(tenant, hub, shifts, times=SlowTimes())
    assert slow.totals["times"] == "slow"
    assert default.unassigned == [] and slow.unassigned, "4 h cannot hold 20 stops of 20 min"
    assert slow.totals["stops"] < default.totals["stops"]
    routes = stored_stops(tenant)
    for route, stops in routes:
        assert {stop.planned_service_s for stop in stops} <= {1200, 1260}
        assert_schedule(hub, route, stops, factor=2.0)
    default_per_stop = sum(spec["planned_duration_s"] for spec in default.routes) / len(
        [s for spec in default.routes for s in spec["stops"]]
    )
    slow_per_stop = sum(route.planned_duration_s for route, _ in routes) / slow.totals["stops"]
    assert slow_per_stop > 2 * default_per_stop


def test_learned_times_adapt_the_newest_eta_model(tenant):
    organization = tenant.organization
    with organization_scope(organization):
        assert learned_times(organization) is None
        EtaModelFactory(
            organization=organization,
            version=3,
            travel_by_hour={"9": 1.4, "10": 1.4, "11": 1.2, "12": 1.2},
            dwell_factor=1.5,
        )
        times = learned_times(organization)
    assert times.label == "learned v3"
    door = {"address": "Calle Prat 10, La Serena", "location": HUB, "local_hour": 10.0}
    assert times.service_s(parcels=1, **door) == pytest.approx(270)
    assert times.service_s(parcels=3, **door) == pytest.approx(330)
    road = {"length_m": 1000, "free_flow_s": 120}
    assert times.travel_factor(local_hour=10.0, **road) == pytest.approx(1.4)
    assert times.travel_factor(local_hour=11.5, **road) == pytest.approx(1.2)
    # Between learned hours the factor moves gradually; hours never learned keep the prior.
    assert times.travel_factor(local_hour=11.0, **road) == pytest.approx(1.3)
    assert times.travel_factor(local_hour=3.5, **road) == pytest.approx(1.15)


def test_a_trained_model_changes_the_plan_by_itself(tenant, depot):
    hub, shifts = depot
    with organization_scope(tenant.organization):
        EtaModelFactory(
            organization=tenant.organization,
            version=1,
            travel_by_hour={str(h): 1.6 for h in range(24)},
            dwell_factor=1.2,
        )
    result = plan(tenant, hub, shifts)
    assert result.totals["times"] == "learned v1"
    for route, stops in stored_stops(tenant):
        for stop in stops:
            parcels = sum(s.parcel_count for s in stop.shipments.all())
            assert stop.planned_service_s == round((180 + 20 * (parcels - 1)) * 1.2)
        assert_schedule(hub, route, stops, factor=1.6)


def test_a_legs_factor_is_the_mean_over_its_destinations_window():
    matrix = travel_matrix([HUB, Point(HUB.x + 0.02, HUB.y, srid=4326)])

    class MorningRush:
        label = "rush"

        def travel_factor(self, *, local_hour, length_m, free_flow_s):
            return 2.0 if local_hour < 10 else 1.0

    assert hour_samples((9.0, 13.0)) == [9.5, 10.5, 11.5, 12.5]
    assert hour_samples((9.0, 9.5)) == [9.25]
    timed = timed_matrix(matrix, MorningRush(), [(9, 17), (9, 13)])
    free = matrix.durations_s[0][1]
    assert timed.durations_s[0][1] == round(free * (2.0 + 1 + 1 + 1) / 4)
    assert timed.durations_s[1][0] == round(matrix.durations_s[1][0] * (2.0 + 7) / 8)


def test_learned_tables_become_planning_times_by_building_parcels_and_hour(tenant):
    """A model with learned tables plans with them: an apartment block takes longer than an
    address that says nothing, more parcels longer still, and the rush hour runs slower."""
    import math

    from tracking.eta.factors import (
        DWELL_GROUPS,
        TRAVEL_GROUPS,
        LearnedTimes,
        fit_additive,
        leg_keys,
        visit_keys,
    )

    crew = (None, None)
    visits, dwell_y, legs, leg_y = [], [], [], []
    for n in range(300):
        apartment = n % 2 == 0
        parcels = 1 + n % 3
        address = f"Calle Prat {n}" + (", Depto 402" if apartment else "")
        visits.append(visit_keys(hour=11, address=address, parcels=parcels, point=HUB, crew=crew))
        dwell_y.append(math.log((300 if apartment else 120) + 30 * parcels))
        for hour, ratio in ((8, 1.8), (11, 1.1)):
            legs.append(
                leg_keys(hour=hour, weekday=1, free_flow_s=300, crow_m=900, way="in", crew=crew)
            )
            leg_y.append(math.log(ratio))
    tables = LearnedTimes(
        7, fit_additive(legs, leg_y, TRAVEL_GROUPS), fit_additive(visits, dwell_y, DWELL_GROUPS)
    )
    with organization_scope(tenant.organization):
        EtaModelFactory(
            organization=tenant.organization,
            version=7,
            factors=tables.as_json(),
        )
        EtaCalibrationFactory(
            organization=tenant.organization,
            buckets={"45-60": {"p10_min": -6.0, "p90_min": 25.0, "n": 900}},
        )
        times = learned_times(tenant.organization, weekday=1)
    assert times.label == "learned v7"
    # 45-60 min ahead, arrivals came up to 25 min after their ETA one time in ten: the margin.
    assert times.late_margin_s == 1500
    door = {"location": HUB, "local_hour": 11.0}
    flat = times.service_s(address="Calle Prat 9000, Depto 12", parcels=1, **door)
    house = times.service_s(address="Calle Prat 9001", parcels=1, **door)
    assert flat > 1.5 * house
    assert times.service_s(address="Calle Prat 9001", parcels=3, **door) > house
    road = {"length_m": 900 * 1.3, "free_flow_s": 300}
    assert times.travel_factor(local_hour=8.5, **road) == pytest.approx(1.8, rel=0.1)
    assert times.travel_factor(local_hour=11.5, **road) == pytest.approx(1.1, rel=0.1)


class MarginTimes(DefaultTimes):
    """Today's times, planned to arrive half an hour before each window closes."""

    label = "margin"
    late_margin_s = 1800


def test_a_late_margin_plans_each_stop_that_long_before_its_window_closes(tenant, depot):
    hub, shifts = depot
    result = plan(tenant, hub, shifts, times=MarginTimes())
    assert result.totals["times"] == "margin" and not result.unassigned
    for _route, stops in stored_stops(tenant):
        for stop in stops:
            # The windows here are 2 h or more: the margin always fits.
            assert stop.planned_arrival <= stop.window_end - timedelta(seconds=1800)
            assert stop.planned_arrival >= stop.window_start
