"""The time-based rules through the sweep (real PostgreSQL/PostGIS, real ping partitions):
signal_lost, battery_low, route_not_started, stalled; each fires, stays quiet at its boundary,
fires once however often the sweep runs, clears, and ignores stale or flagged data. The sweep
costs the same number of queries for 3 routes as for 30."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carriers.services import device_create
from control_tower.events.models import OutboxEvent
from exceptions.models import Alert, AlertState
from exceptions.sweep import sweep_organization
from tests.factories import DriverFactory, RouteFactory
from tracking.models import DevicePosition, Ping, PingFlag

pytestmark = pytest.mark.django_db

# Far from the factories' hub and stops (several km): standing here is not service.
ROADSIDE = (-71.3000, -29.9500)
# About 30 m north of ROADSIDE (inside the 50 m stall radius), and about 150 m.
NEARBY = (-71.3000, -29.94973)
AWAY = (-71.3000, -29.94865)


def running_route(org, carrier, **fields):
    driver = DriverFactory(organization=org, carrier=carrier)
    fields.setdefault("started_at", timezone.now() - timedelta(hours=1))
    route = RouteFactory(
        organization=org, carrier=carrier, driver=driver, status="in_progress", **fields
    )
    device, _ = device_create(
        organization=org, carrier=carrier, driver=driver, name="phone", kind="driver_app"
    )
    return route, device


def fix(device, at, where=ROADSIDE, *, flags=0, battery=None, charging=None):
    """A stored ping; an unflagged one newer than the device's position moves it (as ingest
    does: the last-position table never goes backwards and never takes a flagged fix)."""
    point = Point(*where, srid=4326)
    Ping.objects.create(
        organization_id=device.organization_id,
        device=device,
        fix_time=at,
        received_at=timezone.now(),
        location=point,
        battery_pct=battery,
        charging=charging,
        flags=flags,
        source="native",
    )
    if flags:
        return
    position = DevicePosition.objects.filter(device=device).first()
    if position is None:
        DevicePosition.objects.create(
            organization_id=device.organization_id,
            device=device,
            fix_time=at,
            received_at=at,
            location=point,
            battery_pct=battery,
            source="native",
        )
    elif position.fix_time < at:
        position.fix_time, position.location, position.battery_pct = at, point, battery
        position.save()


def alerts(kind, *, unresolved=True):
    queryset = Alert.objects.filter(kind=kind)
    if unresolved:
        queryset = queryset.exclude(state=AlertState.RESOLVED)
    return list(queryset)


def raised_events(kind):
    return OutboxEvent.objects.filter(type="alert.raised", payload__kind=kind).count()


# --- signal_lost -------------------------------------------------------------------------------


def test_signal_lost_fires_once_past_the_threshold_and_clears_on_a_new_fix(scoped, tenant):
    route, device = running_route(scoped, tenant.carrier)
    now = timezone.now()
    fix(device, now - timedelta(minutes=11))

    sweep_organization(scoped, now)
    sweep_organization(scoped, now + timedelta(seconds=30))

    (alert,) = alerts("signal_lost")
    assert alert.subject_type == "route" and alert.subject_id == str(route.pk)
    assert alert.severity == "high"
    assert alert.started_at == now - timedelta(minutes=11)
    assert alert.route_id == route.pk and alert.carrier_id == tenant.carrier.pk
    assert raised_events("signal_lost") == 1

    fix(device, now)
    sweep_organization(scoped, now + timedelta(minutes=1))
    assert alerts("signal_lost") == []
    (closed,) = alerts("signal_lost", unresolved=False)
    assert closed.auto_resolved and closed.resolution_code == "condition_cleared"


def test_signal_lost_quiet_at_the_boundary(scoped, tenant):
    _route, device = running_route(scoped, tenant.carrier)
    at = timezone.now() - timedelta(minutes=10)
    fix(device, at)

    sweep_organization(scoped, at + timedelta(minutes=10))  # exactly N minutes: not "more than"

    assert alerts("signal_lost") == []


def test_signal_lost_ignores_late_buffered_and_flagged_fixes(scoped, tenant):
    _fresh_route, fresh = running_route(scoped, tenant.carrier)
    _silent_route, silent = running_route(scoped, tenant.carrier)
    now = timezone.now()
    fix(fresh, now - timedelta(minutes=1))
    # A buffered fix from 20 minutes ago arrives now: old data never raises.
    fix(fresh, now - timedelta(minutes=20))
    # The other device's only recent fixes are outliers: they do not keep it alive.
    fix(silent, now - timedelta(minutes=15))
    fix(silent, now - timedelta(minutes=1), AWAY, flags=PingFlag.IMPOSSIBLE_SPEED)

    sweep_organization(scoped, now)

    (alert,) = alerts("signal_lost")
    assert alert.subject_id == str(_silent_route.pk)


def test_signal_lost_quiet_for_untracked_and_forgotten_routes(scoped, tenant):
    now = timezone.now()
    RouteFactory(  # no device for its driver or vehicle: nothing to lose
        organization=scoped,
        carrier=tenant.carrier,
        driver=DriverFactory(organization=scoped, carrier=tenant.carrier),
        status="in_progress",
        started_at=now - timedelta(hours=2),
    )
    _old, device = running_route(
        scoped, tenant.carrier, date=(now - timedelta(days=3)).date()
    )  # left running three days ago
    fix(device, now - timedelta(hours=1))

    sweep_organization(scoped, now)

    assert alerts("signal_lost") == []


def test_signal_lost_clears_when_the_route_completes(scoped, tenant):
    route, device = running_route(scoped, tenant.carrier)
    now = timezone.now()
    fix(device, now - timedelta(minutes=30))
    sweep_organization(scoped, now)
    assert len(alerts("signal_lost")) == 1

    route.status = "completed"
    route.save()
    sweep_organization(scoped, now + timedelta(seconds=30))

    assert alerts("signal_lost") == []


# --- battery_low -------------------------------------------------------------------------------


def test_battery_low_fires_once_holds_in_the_band_and_clears_above_it(scoped, tenant):
    _route, device = running_route(scoped, tenant.carrier)
    now = timezone.now()
    fix(device, now - timedelta(minutes=2), battery=12)
    sweep_organization(scoped, now)
    sweep_organization(scoped, now + timedelta(seconds=30))
    (alert,) = alerts("battery_low")
    assert alert.subject_type == "device" and alert.subject_id == str(device.pk)
    assert alert.detail["battery_pct"] == 12
    assert raised_events("battery_low") == 1

    fix(device, now - timedelta(minutes=1), battery=17)  # above 15, below 15 + 5: no flapping
    sweep_organization(scoped, now + timedelta(minutes=1))
    assert len(alerts("battery_low")) == 1

    fix(device, now, battery=20)
    sweep_organization(scoped, now + timedelta(minutes=2))
    assert alerts("battery_low") == []


def test_battery_low_boundary_charging_and_stale_readings(scoped, tenant):
    _a, at_limit = running_route(scoped, tenant.carrier)
    _b, charging = running_route(scoped, tenant.carrier)
    _c, stale = running_route(scoped, tenant.carrier)
    now = timezone.now()
    fix(at_limit, now - timedelta(minutes=1), battery=15)  # not under 15
    fix(charging, now - timedelta(minutes=1), battery=5, charging=True)
    fix(stale, now - timedelta(minutes=11), battery=5)  # older than the freshness limit

    sweep_organization(scoped, now)

    assert alerts("battery_low") == []


def test_battery_low_clears_when_charging(scoped, tenant):
    _route, device = running_route(scoped, tenant.carrier)
    now = timezone.now()
    fix(device, now - timedelta(minutes=2), battery=8)
    sweep_organization(scoped, now)
    assert len(alerts("battery_low")) == 1

    fix(device, now - timedelta(minutes=1), battery=8, charging=True)
    sweep_organization(scoped, now)

    assert alerts("battery_low") == []


# --- route_not_started -------------------------------------------------------------------------


def test_route_not_started_fires_once_and_clears_when_started(scoped, tenant):
    now = timezone.now()
    route = RouteFactory(
        organization=scoped, carrier=tenant.carrier, planned_start=now - timedelta(minutes=21)
    )
    sweep_organization(scoped, now)
    sweep_organization(scoped, now + timedelta(seconds=30))
    (alert,) = alerts("route_not_started")
    assert alert.subject_id == str(route.pk) and alert.started_at == route.planned_start
    assert raised_events("route_not_started") == 1

    route.status = "in_progress"
    route.started_at = now
    route.save()
    sweep_organization(scoped, now + timedelta(minutes=1))

    assert alerts("route_not_started") == []


def test_route_not_started_quiet_at_the_boundary_and_for_old_plans(scoped, tenant):
    now = timezone.now()
    for ago in (timedelta(minutes=20), timedelta(days=3)):
        RouteFactory(organization=scoped, carrier=tenant.carrier, planned_start=now - ago)

    sweep_organization(scoped, now)

    assert alerts("route_not_started") == []


# --- stalled -----------------------------------------------------------------------------------


def minute_fixes(device, now, minutes, where=ROADSIDE):
    for m in range(minutes, -1, -1):
        fix(device, now - timedelta(minutes=m), where)


def test_stalled_fires_once_away_from_stops_and_clears_when_moving(scoped, tenant):
    route, device = running_route(scoped, tenant.carrier)
    now = timezone.now()
    minute_fixes(device, now, 11)
    fix(device, now - timedelta(seconds=30), NEARBY)  # jitter inside the radius

    sweep_organization(scoped, now)
    sweep_organization(scoped, now + timedelta(seconds=20))

    (alert,) = alerts("stalled")
    assert alert.subject_id == str(route.pk)
    assert alert.started_at <= now - timedelta(minutes=10)
    assert raised_events("stalled") == 1

    fix(device, now + timedelta(seconds=25), AWAY)
    sweep_organization(scoped, now + timedelta(seconds=30))
    assert alerts("stalled") == []


def test_stalled_quiet_without_history_when_moving_or_at_a_stop(scoped, tenant):
    _short, short = running_route(scoped, tenant.carrier)
    _moved, moved = running_route(scoped, tenant.carrier)
    at_stop_route, at_stop = running_route(scoped, tenant.carrier)
    from tests.factories import StopFactory

    StopFactory(organization=scoped, route=at_stop_route, location=Point(*ROADSIDE, srid=4326))
    now = timezone.now()
    minute_fixes(short, now, 9)  # not N minutes of history: whereabouts unknown
    minute_fixes(moved, now, 11)
    fix(moved, now - timedelta(minutes=5, seconds=10), AWAY)  # it went away and came back
    minute_fixes(at_stop, now, 11)

    sweep_organization(scoped, now)

    assert alerts("stalled") == []


def test_stalled_ignores_flagged_outliers_and_stale_positions(scoped, tenant):
    _outlier_route, outlier = running_route(scoped, tenant.carrier)
    _stale_route, stale = running_route(scoped, tenant.carrier)
    now = timezone.now()
    minute_fixes(outlier, now, 11)
    # A jump the ingest flagged: it must not count as movement.
    fix(outlier, now - timedelta(minutes=4, seconds=10), AWAY, flags=PingFlag.IMPOSSIBLE_SPEED)
    # Parked for an hour, but nothing newer than 5 minutes: no fresh data, no stall.
    minute_fixes(stale, now - timedelta(minutes=5), 11)

    sweep_organization(scoped, now)

    (alert,) = alerts("stalled")
    assert alert.subject_id == str(_outlier_route.pk)


# --- persisting conditions refresh last_seen_at ------------------------------------------------


def test_a_persisting_condition_refreshes_last_seen_in_one_statement_without_events(scoped, tenant):
    now = timezone.now()
    for _ in range(3):
        _route, device = running_route(scoped, tenant.carrier)
        fix(device, now - timedelta(minutes=20))
    sweep_organization(scoped, now)
    before = {a.pk: a.last_seen_at for a in alerts("signal_lost")}
    assert len(before) == 3
    events = OutboxEvent.objects.count()

    with CaptureQueriesContext(connection) as captured:
        sweep_organization(scoped, now + timedelta(seconds=30))

    after = {a.pk: a.last_seen_at for a in alerts("signal_lost")}
    assert after.keys() == before.keys()
    assert all(after[pk] > before[pk] for pk in before)
    assert OutboxEvent.objects.count() == events  # a mere refresh is no news
    refreshes = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith('UPDATE "exceptions_alert"') and "last_seen_at" in q["sql"]
    ]
    assert len(refreshes) == 1  # one statement for the three, and none for other kinds


# --- the sweep is set-based --------------------------------------------------------------------


SWEEP_QUERIES = 14


def _sweep_queries(org, now) -> int:
    with CaptureQueriesContext(connection) as captured:
        sweep_organization(org, now)
    return len(captured.captured_queries)


def test_sweep_query_count_does_not_grow_with_routes(scoped, tenant, django_assert_max_num_queries):
    now = timezone.now()
    for _ in range(3):
        _route, device = running_route(scoped, tenant.carrier)
        fix(device, now - timedelta(seconds=20), battery=80)
    _sweep_queries(scoped, now)  # warm the thresholds cache
    few = _sweep_queries(scoped, now)

    for _ in range(27):
        _route, device = running_route(scoped, tenant.carrier)
        fix(device, now - timedelta(seconds=20), battery=80)
    with django_assert_max_num_queries(few):
        counts = sweep_organization(scoped, now)

    # An organization with nothing to change: the snapshot, the open alerts of each of the 6
    # kinds, the stall and off-route checks, the planned routes, the arrived stops (the learned
    # dwell only when a vehicle stands at one), and escalation's organization read and two
    # alert reads. No refresh: nothing is open.
    assert few == SWEEP_QUERIES

    assert sum(raised + cleared for key, (raised, cleared) in _pairs(counts)) == 0
    assert Alert.objects.count() == 0


def _pairs(counts):
    return [(k, v) for k, v in counts.items() if k != "escalated"]
