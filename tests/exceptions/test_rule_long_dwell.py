"""long_dwell through the sweep: standing at a stop longer than `long_dwell_factor` x the
learned P90 dwell of that stop's kind, and at least `long_dwell_margin_min` more (the ETA
engine's prior P90 before there is history). Explicit times: nothing depends on the wall
clock but the alert's own stamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.gis.geos import Point

from control_tower.events.models import OutboxEvent
from exceptions.models import Alert, AlertState, AlertThresholds
from exceptions.rules.long_dwell import P90_OVER_MEDIAN, forget_learned_dwell
from exceptions.sweep import sweep_organization
from exceptions.thresholds import forget_thresholds
from tests.factories import RouteFactory, StopFactory
from tracking.services.stops import stop_arrive, stop_complete

pytestmark = pytest.mark.django_db

# A fixed afternoon: the learned P90 is cached per hour of `now`.
NOW = datetime(2026, 11, 10, 15, 20, tzinfo=UTC)
PRIOR_P90 = 180 * P90_OVER_MEDIAN  # no history, no ETA model: planned service x 1.57
PRIOR_LIMIT = max(1.5 * PRIOR_P90, PRIOR_P90 + 300)  # defaults: x 1.5, at least + 5 min


def dwell_alerts(*, unresolved=True):
    alerts = Alert.objects.filter(kind="long_dwell")
    if unresolved:
        alerts = alerts.exclude(state=AlertState.RESOLVED)
    return list(alerts)


@pytest.fixture(autouse=True)
def fresh_learning(scoped):
    forget_learned_dwell(scoped.pk)
    yield
    forget_learned_dwell(scoped.pk)


@pytest.fixture
def route(scoped, tenant):
    return RouteFactory(organization=scoped, carrier=tenant.carrier, status="in_progress")


def arrived(route, seconds_ago: float, **fields):
    stop = StopFactory(
        organization=route.organization, route=route, planned_service_s=180, **fields
    )
    stop_arrive(stop=stop, actor=None, at=NOW - timedelta(seconds=seconds_ago))
    stop.refresh_from_db()
    return stop


def history(org, carrier, dwells_s, *, kind="delivery", days_ago=3):
    """Completed deliveries of a finished route `days_ago` before NOW, one per dwell."""
    route = RouteFactory(
        organization=org,
        carrier=carrier,
        status="completed",
        date=(NOW - timedelta(days=days_ago)).date(),
    )
    start = NOW - timedelta(days=days_ago, hours=4)
    for index, dwell in enumerate(dwells_s):
        arrival = start + timedelta(minutes=12 * index)
        StopFactory(
            organization=org,
            route=route,
            kind=kind,
            status="completed",
            planned_service_s=180,
            actual_arrival=arrival,
            actual_departure=arrival + timedelta(seconds=dwell),
        )


def test_fires_once_past_the_limit_refreshes_quietly_and_clears_on_departure(scoped, route):
    stop = arrived(route, PRIOR_LIMIT + 30)

    sweep_organization(scoped, NOW)
    (alert,) = dwell_alerts()
    first_seen = alert.last_seen_at
    events = OutboxEvent.objects.filter(payload__kind="long_dwell").count()
    sweep_organization(scoped, NOW + timedelta(seconds=30))

    (alert,) = dwell_alerts()
    assert alert.subject_type == "stop" and alert.subject_id == str(stop.pk)
    assert alert.started_at == stop.actual_arrival
    assert alert.detail["limit_s"] == round(PRIOR_LIMIT)
    assert alert.detail["p90_from"] == "prior"
    assert Alert.objects.filter(kind="long_dwell").count() == 1
    # The second sweep saw the condition again: last_seen_at moves, no event for that.
    assert alert.last_seen_at > first_seen
    assert OutboxEvent.objects.filter(payload__kind="long_dwell").count() == events == 1

    stop_complete(stop=stop, actor=None, at=NOW + timedelta(seconds=40))
    sweep_organization(scoped, NOW + timedelta(minutes=1))
    assert dwell_alerts() == []
    (closed,) = dwell_alerts(unresolved=False)
    assert closed.auto_resolved and closed.resolution_note == "stop completed"


def test_quiet_at_the_limit_and_for_an_ordinary_slow_visit(scoped, route):
    arrived(route, PRIOR_LIMIT)  # exactly the limit: not "longer"
    arrived(route, PRIOR_P90 * 1.4)  # past its P90, as one visit in ten is: ordinary

    sweep_organization(scoped, NOW)

    assert dwell_alerts() == []


def test_the_limit_is_learned_per_stop_kind(scoped, tenant, route):
    # 40 deliveries: dwells 1..40 x 15 s; P90 (interpolated) = 36.1 x 15 = 541.5 s.
    history(scoped, tenant.carrier, [15 * n for n in range(1, 41)])
    # 10 pickups are too few for their own P90: they take the pooled one (all 50 visits).
    history(scoped, tenant.carrier, [60] * 10, kind="pickup", days_ago=4)
    delivery_p90 = 541.5
    limit = max(1.5 * delivery_p90, delivery_p90 + 300)  # the margin is the larger: 841.5 s
    delivery = arrived(route, limit + 20)
    slow = arrived(route, limit - 20)  # far past the prior's limit, ordinary for this fleet
    pickup = arrived(route, 900, kind="pickup")  # pooled P90 526.5 s: limit 826.5 s

    sweep_organization(scoped, NOW)

    alerts = {a.stop_id: a for a in dwell_alerts()}
    assert set(alerts) == {delivery.pk, pickup.pk}
    assert alerts[delivery.pk].detail["p90_from"] == "kind"
    assert alerts[delivery.pk].detail["p90_s"] == round(delivery_p90)
    assert alerts[delivery.pk].detail["limit_s"] == round(limit)
    assert alerts[pickup.pk].detail["p90_from"] == "all kinds"
    assert slow.pk not in alerts


def test_factor_and_margin_come_from_the_thresholds(scoped, tenant, route):
    AlertThresholds.objects.create(
        organization=scoped, carrier=tenant.carrier, long_dwell_factor=1.0, long_dwell_margin_min=1
    )
    forget_thresholds(scoped.pk)
    try:
        arrived(route, PRIOR_P90 + 60 + 10)

        sweep_organization(scoped, NOW)

        (alert,) = dwell_alerts()
        assert alert.detail["limit_s"] == round(PRIOR_P90 + 60)
    finally:
        forget_thresholds(scoped.pk)


def test_no_alert_from_a_visit_reported_late_or_a_route_not_running(scoped, tenant, route):
    # The phone was offline at the door: arrival and departure arrive together, late. At the
    # sweep the visit is over, however long it was: nothing to tell a dispatcher any more.
    done = arrived(route, 3600)
    stop_complete(stop=done, actor=None, at=NOW - timedelta(minutes=5))
    # A route left running last week is not standing at a stop now.
    parked = RouteFactory(organization=scoped, carrier=tenant.carrier, status="completed")
    StopFactory(
        organization=scoped,
        route=parked,
        status="arrived",
        actual_arrival=NOW - timedelta(hours=3),
        location=Point(-71.26, -29.92, srid=4326),
    )

    sweep_organization(scoped, NOW)

    assert dwell_alerts(unresolved=False) == []


def test_no_flapping_when_the_learned_limit_moves_past_a_waiting_vehicle(scoped, tenant, route):
    stop = arrived(route, PRIOR_LIMIT + 60)
    sweep_organization(scoped, NOW)
    assert len(dwell_alerts()) == 1

    # An hour later the history says visits here are long: the limit is now above the time
    # this vehicle has stood there. The alert stays open until the stop is done.
    history(scoped, tenant.carrier, [3000 + 10 * n for n in range(40)], days_ago=2)
    for minutes in (60, 61, 62):
        sweep_organization(scoped, NOW + timedelta(minutes=minutes))

    assert [a.stop_id for a in dwell_alerts()] == [stop.pk]
    assert Alert.objects.filter(kind="long_dwell").count() == 1


def test_clears_when_the_route_stops_running(scoped, route):
    arrived(route, PRIOR_LIMIT + 60)
    sweep_organization(scoped, NOW)
    assert len(dwell_alerts()) == 1

    route.status = "completed"
    route.save()
    sweep_organization(scoped, NOW + timedelta(seconds=30))

    assert dwell_alerts() == []
