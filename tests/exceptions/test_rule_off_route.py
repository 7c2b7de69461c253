"""off_route through the sweep: far from the CURRENT LEG of the planned geometry (between the
last done stop and the next open one) for longer than `off_route_s`, from fresh, unflagged
fixes only; cleared with hysteresis (back within half the distance for CLEAR_S)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.gis.geos import LineString, Point
from django.utils import timezone

from control_tower.events.models import OutboxEvent
from exceptions.models import Alert, AlertState
from exceptions.rules.off_route import CLEAR_S
from exceptions.sweep import sweep_organization
from tests.exceptions.test_rule_sweep import fix, running_route
from tests.factories import StopFactory
from tracking.models import PingFlag

pytestmark = pytest.mark.django_db

# The planned line runs east-west along latitude -29.95; OFF is about 445 m north of it.
LINE = LineString((-71.32, -29.95), (-71.28, -29.95), srid=4326)
ON = (-71.30, -29.95)
OFF = (-71.30, -29.946)
NEAR = (-71.30, -29.9475)  # about 280 m north: inside 300 m, outside the 150 m clearing
EDGE = (-71.30, -29.94715)  # about 318 m north: just off
BACK = (-71.30, -29.9492)  # about 90 m north: within the clearing distance

# A route that loops: leg 1 east along -29.95 to stop 1, then north and back west along
# -29.944 to stop 2. DETOUR is ~630 m north of leg 1 but ~30 m from leg 2.
LOOP = LineString(
    (-71.32, -29.95), (-71.28, -29.95), (-71.28, -29.944), (-71.32, -29.944), srid=4326
)
STOP_1 = Point(-71.28, -29.95, srid=4326)
STOP_2 = Point(-71.32, -29.944, srid=4326)
DETOUR = (-71.30, -29.9443)


def off_alerts(*, unresolved=True):
    alerts = Alert.objects.filter(kind="off_route")
    if unresolved:
        alerts = alerts.exclude(state=AlertState.RESOLVED)
    return list(alerts)


def every_20_s(device, now, seconds, where):
    for s in range(seconds, -1, -20):
        fix(device, now - timedelta(seconds=s), where)


def test_fires_once_refreshes_quietly_and_clears_back_on_the_line(scoped, tenant):
    route, device = running_route(scoped, tenant.carrier, planned_geometry=LINE)
    now = timezone.now()
    every_20_s(device, now - timedelta(seconds=200), 100, ON)
    every_20_s(device, now, 160, OFF)

    sweep_organization(scoped, now)
    (alert,) = off_alerts()
    first_seen = alert.last_seen_at
    fix(device, now + timedelta(seconds=10), OFF)
    sweep_organization(scoped, now + timedelta(seconds=10))

    (alert,) = off_alerts()
    assert alert.subject_id == str(route.pk) and alert.detail["distance_m"] > 400
    assert Alert.objects.filter(kind="off_route").count() == 1
    assert alert.last_seen_at > first_seen  # still off: seen again, no event for it
    assert OutboxEvent.objects.filter(payload__kind="off_route").count() == 1

    # Back on the line: one fix is not enough (hysteresis), CLEAR_S seconds of them are.
    fix(device, now + timedelta(seconds=15), ON)
    sweep_organization(scoped, now + timedelta(seconds=30))
    assert len(off_alerts()) == 1
    every_20_s(device, now + timedelta(seconds=20 + CLEAR_S), CLEAR_S, BACK)
    sweep_organization(scoped, now + timedelta(seconds=20 + CLEAR_S))
    assert off_alerts() == []


def test_measures_the_current_leg_not_the_whole_line(scoped, tenant):
    route, device = running_route(scoped, tenant.carrier, planned_geometry=LOOP)
    StopFactory(organization=scoped, route=route, sequence=1, location=STOP_1)
    second = StopFactory(organization=scoped, route=route, sequence=2, location=STOP_2)
    now = timezone.now()
    every_20_s(device, now, 160, DETOUR)  # on leg 1, in the street leg 2 will take

    sweep_organization(scoped, now)

    (alert,) = off_alerts()
    assert alert.detail["distance_m"] > 600

    # Stop 1 done: the current leg is leg 2, which runs along that very street.
    first = route.stops.get(sequence=1)
    first.status, first.actual_arrival = "completed", now - timedelta(minutes=30)
    first.actual_departure = now - timedelta(minutes=25)
    first.save()
    every_20_s(device, now + timedelta(seconds=CLEAR_S + 20), CLEAR_S, DETOUR)
    sweep_organization(scoped, now + timedelta(seconds=CLEAR_S + 20))
    assert off_alerts() == []
    assert second.status == "pending"


def test_a_route_with_every_stop_done_is_measured_on_the_way_back(scoped, tenant):
    route, device = running_route(scoped, tenant.carrier, planned_geometry=LOOP)
    now = timezone.now()
    for sequence, where in ((1, STOP_1), (2, STOP_2)):
        StopFactory(
            organization=scoped,
            route=route,
            sequence=sequence,
            location=where,
            status="completed",
            actual_arrival=now - timedelta(minutes=40 - 10 * sequence),
            actual_departure=now - timedelta(minutes=35 - 10 * sequence),
        )
    # After stop 2 the rest of the line is the way back to the hub: the last point of LOOP.
    every_20_s(device, now, 160, (-71.32, -29.95))  # ~670 m south of that: off

    sweep_organization(scoped, now)

    assert len(off_alerts()) == 1


def test_quiet_before_the_duration_at_the_distance_for_outliers_stale_data_and_no_line(
    scoped, tenant
):
    _short, short = running_route(scoped, tenant.carrier, planned_geometry=LINE)
    _near, near = running_route(scoped, tenant.carrier, planned_geometry=LINE)
    _outlier, outlier = running_route(scoped, tenant.carrier, planned_geometry=LINE)
    _stale, stale = running_route(scoped, tenant.carrier, planned_geometry=LINE)
    _no_line, no_line = running_route(scoped, tenant.carrier)
    now = timezone.now()
    every_20_s(short, now - timedelta(seconds=120), 180, ON)
    every_20_s(short, now, 100, OFF)  # off for 100 s, not 120
    every_20_s(near, now, 300, NEAR)  # 280 m: not more than 300
    every_20_s(outlier, now, 300, ON)
    fix(outlier, now - timedelta(seconds=5), OFF, flags=PingFlag.IMPOSSIBLE_SPEED)
    for s in range(200, 120, -20):  # flagged fixes never make a vehicle off the line
        fix(outlier, now - timedelta(seconds=s - 10), OFF, flags=PingFlag.IMPOSSIBLE_SPEED)
    # A backlog of off fixes arriving now, all from 10 minutes ago: old data never raises.
    every_20_s(stale, now - timedelta(minutes=10), 300, OFF)
    every_20_s(no_line, now, 300, OFF)

    sweep_organization(scoped, now)

    assert off_alerts() == []


def test_no_flapping_for_a_vehicle_hovering_at_the_threshold(scoped, tenant):
    route, device = running_route(scoped, tenant.carrier, planned_geometry=LINE)
    now = timezone.now()
    # Hovering either side of 300 m: never off for 120 s straight, never raised.
    for s in range(300, -1, -20):
        fix(device, now - timedelta(seconds=s), EDGE if (s // 20) % 2 else NEAR)
    sweep_organization(scoped, now)
    assert off_alerts(unresolved=False) == []

    # Off for real, then hovering between just off and just inside: one alert, held open.
    later = now + timedelta(minutes=5)
    every_20_s(device, later, 160, OFF)
    sweep_organization(scoped, later)
    assert len(off_alerts()) == 1
    for step in range(1, 11):
        at = later + timedelta(seconds=30 * step)
        fix(device, at - timedelta(seconds=15), NEAR)
        fix(device, at, EDGE if step % 2 else NEAR)
        sweep_organization(scoped, at)

    assert [a.subject_id for a in off_alerts(unresolved=False)] == [str(route.pk)]
    assert len(off_alerts()) == 1
