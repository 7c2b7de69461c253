"""Every metric on a hand-built day with known answers (tests/sla/builders.py), including the
boundaries: delivered exactly at the window's end, one minute into grace, early, a reattempt
on the next day, missing proof parts, scans out of order, a route with a GPS gap."""

from __future__ import annotations

import pytest

from carriers.sla import selectors
from carriers.sla.models import AttemptFact, DeliveryFact
from carriers.sla.rollup import recompute_day
from carriers.sla.types import ReportFilters
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.sla.builders import DAY, NEXT_DAY, build_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant):
    built = build_world(tenant)
    for day in (DAY, NEXT_DAY):
        recompute_day(organization=tenant.organization, day=day)
    return built


@pytest.fixture
def ops(tenant):
    return actor_for_membership(tenant.members[Role.OPS_MANAGER])


def _card(actor, day, **kwargs):
    with organization_scope(actor.organization):
        return selectors.scorecard(
            actor=actor, filters=ReportFilters(date_from=day, date_to=day), **kwargs
        )


def _values(row) -> dict:
    return {key: value.value for key, value in row.metrics.items()}


EXPECTED_DAY = {
    # A (exactly at the window's end), B (1 min into 10 min grace), H (feed) on time; C
    # early; D 30 min late; F has no window.
    "on_time_pct": 60.0,
    "early_pct": 20.0,
    "late_pct": 20.0,
    "lateness_avg_min": 30.0,
    "lateness_p90_min": 30.0,
    # First attempts A F B C D E G H; E (stop) and G (feed scan) failed.
    "first_attempt_pct": 75.0,
    "failed_attempts": 2.0,
    # 1 alert / 5 visited stops.
    "exceptions_per_100": 20.0,
    # A F H complete; B lacks its photo, C is outside the geofence, D has no proof.
    "pod_compliance_pct": 50.0,
    # A and H in order; B, D, F miss out_for_delivery; C has them in the wrong order.
    "scan_compliance_pct": 33.33,
    # Marks 09:00–11:01 (a fix a minute until 10:59, fresh for 120 s) and 12:00–12:59.
    "tracking_coverage_pct": 75.83,
    # Stop-weighted: S1 mean(5, 2) = 3.5, S4 20 -> 11.75; S1's last window held the arrival.
    "eta_mae_min": 11.75,
    "eta_window_hit_pct": 50.0,
    "rating_avg": 3.5,
    "stops_per_hour": 1.25,
    "parcels_per_route": 6.0,
    "km_per_stop": 8.0,
    # Visited 1, 3, 2, 4, 5: three of four steps forward.
    "sequence_adherence_pct": 75.0,
    "plan_time_deviation_min": 5.0,
    "deliveries": 6.0,
    "stops": 5.0,
    "routes": 1.0,
}


def test_every_metric_of_the_hand_built_day(world, ops):
    card = _card(ops, DAY)
    assert [row.label for row in card.rows] == [world.carrier.name]
    assert _values(card.rows[0]) == EXPECTED_DAY
    assert _values(card.total) == EXPECTED_DAY


def test_breaches_are_judged_against_the_carriers_policy(world, ops):
    metrics = _card(ops, DAY).rows[0].metrics
    assert metrics["on_time_pct"].target == 95.0
    assert metrics["on_time_pct"].status == "breach"
    assert metrics["first_attempt_pct"].status == "breach"  # 75 < 90
    assert metrics["lateness_p90_min"].status == "pass"  # 30 <= 30
    assert metrics["eta_mae_min"].status == "pass"  # 11.75 <= 15
    assert metrics["deliveries"].status is None  # a volume is never judged
    # The numerator is what the default drill-down lists: the one late delivery of five.
    assert (metrics["on_time_pct"].numerator, metrics["on_time_pct"].denominator) == (1, 5)
    assert (metrics["first_attempt_pct"].numerator, metrics["first_attempt_pct"].denominator) == (
        2,
        8,
    )
    assert metrics["scan_compliance_pct"].numerator == 4


def test_reattempt_counts_on_the_day_it_happened(world, ops):
    values = _values(_card(ops, NEXT_DAY).rows[0])
    assert values["deliveries"] == 1.0
    assert values["first_attempt_pct"] is None  # E's first attempt was the day before
    assert values["late_pct"] == 100.0
    assert values["lateness_avg_min"] == 21 * 60.0  # D 13:00 -> D+1 10:00
    assert values["lateness_p90_min"] == 1260.0
    with organization_scope(world.organization):
        fact = DeliveryFact.objects.get(day=NEXT_DAY)
        assert fact.attempt_number == 2
        assert fact.shipment_id == world.shipments["E"].pk


def test_a_stop_failure_scanned_too_counts_once(world):
    with organization_scope(world.organization):
        attempts = AttemptFact.objects.filter(shipment=world.shipments["E"]).order_by("day")
        assert [(a.day, a.outcome, a.source, a.reason) for a in attempts] == [
            (DAY, "failed", "stop", "not_home"),
            (NEXT_DAY, "delivered", "stop", ""),
        ]
        # H's repeated "delivered" scan is not a second delivery.
        assert DeliveryFact.objects.filter(shipment=world.shipments["H"]).count() == 1


def test_previous_period_and_trend(world, ops):
    card = _card(ops, NEXT_DAY)
    on_time = card.total.metrics["on_time_pct"]
    assert (on_time.value, on_time.previous, on_time.delta) == (0.0, 60.0, -60.0)
    assert card.previous_filters.date_from == DAY
    # By day, each day is compared with the same day of the previous period.
    by_day = _card(ops, NEXT_DAY, group="day")
    assert [row.key for row in by_day.rows] == [NEXT_DAY.isoformat()]
    assert by_day.rows[0].metrics["on_time_pct"].previous == 60.0


def test_groupings(world, ops):
    by_hub = _card(ops, DAY, group="hub")
    assert [(r.key, r.label) for r in by_hub.rows] == [(str(world.hub.pk), world.hub.name)]
    by_region = _card(ops, DAY, group="region")
    assert [r.label for r in by_region.rows] == ["Norte"]
    by_driver = _card(ops, DAY, group="driver")
    labels = {r.label: _values(r)["deliveries"] for r in by_driver.rows}
    # The feed-delivered H has no driver.
    assert labels == {world.driver.name: 5.0, "No driver (carrier feed)": 1.0}
    by_service = _card(ops, DAY, group="service_type")
    deliveries = {r.key: _values(r)["deliveries"] for r in by_service.rows}
    assert deliveries["same_day"] == 1.0 and deliveries["standard"] == 5.0


def test_breakdowns_and_series(world, ops):
    filters = ReportFilters(date_from=DAY, date_to=NEXT_DAY)
    with organization_scope(world.organization):
        reasons = selectors.failure_reasons(actor=ops, filters=filters)
        kinds = selectors.exceptions_by_kind(actor=ops, filters=filters)
        lateness = selectors.lateness_distribution(actor=ops, filters=filters)
        series = selectors.metric_series(actor=ops, filters=filters, metric="on_time_pct")
    (_key, _label, counts) = reasons.rows[0]
    assert counts["not_home"] == 1 and counts["refused"] == 1 and sum(counts.values()) == 2
    assert kinds.rows[0][2]["stalled"] == 1
    assert lateness.rows[0][2] == {
        "0-5": 0,
        "5-15": 0,
        "15-30": 1,
        "30-60": 0,
        "60-120": 0,
        "120+": 1,
    }
    assert series[0].points == [(DAY, 60.0), (NEXT_DAY, 0.0)]


def test_drilldown_from_the_late_rate_lists_the_late_delivery(world, ops):
    with organization_scope(world.organization):
        drill = selectors.drilldown(
            actor=ops, filters=ReportFilters(date_from=DAY, date_to=DAY), metric="on_time_pct"
        )
    assert drill.outcome == "late" and drill.count == 1
    row = drill.rows[0]
    assert row["reference"] == world.shipments["D"].reference
    assert row["lateness_min"] == 30.0
    assert row["links"] == {
        "console": f"/console/?stop={world.stops['S4'].pk}",
        "custody": f"/api/v1/shipments/{world.shipments['D'].pk}/custody/",
    }


@pytest.mark.parametrize(
    ("metric", "outcome", "expected"),
    [
        ("first_attempt_pct", None, {"E", "G"}),
        ("failed_attempts", "refused", {"G"}),
        ("pod_compliance_pct", None, {"B", "C", "D"}),
        ("scan_compliance_pct", None, {"B", "C", "D", "F"}),
        ("rating_avg", None, {"D"}),
        ("early_pct", "early", {"C"}),
        ("deliveries", None, {"A", "B", "C", "D", "F", "H"}),
    ],
)
def test_drilldowns_of_shipments(world, ops, metric, outcome, expected):
    with organization_scope(world.organization):
        drill = selectors.drilldown(
            actor=ops,
            filters=ReportFilters(date_from=DAY, date_to=DAY),
            metric=metric,
            outcome=outcome,
        )
    names = {row["reference"].split("-")[0] for row in drill.rows}
    assert names == expected and drill.count == len(expected)


def test_drilldowns_of_stops_routes_and_alerts(world, ops):
    filters = ReportFilters(date_from=DAY, date_to=DAY)
    with organization_scope(world.organization):
        eta = selectors.drilldown(actor=ops, filters=filters, metric="eta_window_hit_pct")
        order = selectors.drilldown(actor=ops, filters=filters, metric="sequence_adherence_pct")
        coverage = selectors.drilldown(actor=ops, filters=filters, metric="tracking_coverage_pct")
        alerts = selectors.drilldown(actor=ops, filters=filters, metric="exceptions_per_100")
    assert [row["sequence"] for row in eta.rows] == [4]
    assert [row["sequence"] for row in order.rows] == [2]
    assert [row["route_code"] for row in coverage.rows] == [world.route.code]
    assert coverage.rows[0]["coverage_pct"] == pytest.approx(75.833, abs=0.01)
    assert [row["kind"] for row in alerts.rows] == ["stalled"]


def test_planning_history(world, ops):
    with organization_scope(world.organization):
        by_hour = selectors.planning_history(
            actor=ops, filters=ReportFilters(date_from=DAY, date_to=DAY), by="hour"
        )
    assert sum(row["count"] for row in by_hour) == 5
    nine = next(row for row in by_hour if row["hour"] == 9)
    # S1 arrived 09:55 after leaving the hub at 09:00 and stayed 5 minutes.
    assert (nine["count"], nine["dwell_mean_s"], nine["transit_mean_s"]) == (1, 300.0, 3300.0)


def test_a_scorecard_is_a_fixed_number_of_queries(world, ops, django_assert_max_num_queries):
    filters = ReportFilters(date_from=DAY, date_to=NEXT_DAY)
    with organization_scope(world.organization), django_assert_max_num_queries(6):
        card = selectors.scorecard(actor=ops, filters=filters)
    assert card.total.metrics["deliveries"].value == 7.0


def test_the_service_day_is_local_and_ends_at_midnight(tenant, ops):
    from tests.factories import ShipmentFactory
    from tests.sla.builders import local, scan

    org = tenant.organization
    late_evening = ShipmentFactory(organization=org, carrier=tenant.carrier)
    midnight = ShipmentFactory(organization=org, carrier=tenant.carrier)
    scan(org, late_evening, "delivered", local(org, 23, 59))
    scan(org, midnight, "delivered", local(org, 0, 0, NEXT_DAY))
    for day in (DAY, NEXT_DAY):
        recompute_day(organization=org, day=day)
    with organization_scope(org):
        days = dict(DeliveryFact.objects.values_list("shipment_id", "day"))
    assert days == {late_evening.pk: DAY, midnight.pk: NEXT_DAY}
    # Feed deliveries without a promised window: delivered, not judged.
    values = _values(_card(ops, DAY).rows[0])
    assert (values["deliveries"], values["on_time_pct"]) == (1.0, None)
