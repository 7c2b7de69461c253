"""The storage layer's fast paths against the paths they replace, on the same inputs (issue 19):

- binary `COPY` of a large batch (tracking/ingest/bulk.py) vs the one-statement
  `INSERT … ON CONFLICT` path: stored rows (every column), last positions, device "last seen",
  results (received/stored/duplicates/flagged/moved), replays, late and out-of-order fixes,
  outliers, the live event;
- the rewritten `flag_fixes` vs the implementation it replaced (kept below, verbatim).

Real PostGIS; the two paths write to two devices of the same organization and the rows are
compared with the device column left out.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.models import Device
from tests.factories import VehicleFactory
from tracking.geo import distance_m
from tracking.ingest import bulk, pings
from tracking.ingest.fixes import Fix
from tracking.ingest.pings import (
    JITTER_MIN_RADIUS_M,
    JITTER_SPEED_MPS,
    OUTLIER_FLAGS,
    _Reference,
    flag_fixes,
    pings_ingest,
)
from tracking.models import PingFlag

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)
BASE = NOW - dt.timedelta(minutes=50)


@pytest.fixture(autouse=True)
def _fixed_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


@pytest.fixture
def pair(tenant, device_for):
    """Two devices of the organization, each on its own vehicle (so a position emits)."""
    made = []
    for _ in range(2):
        device, _token = device_for(tenant)
        vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
        Device.dangerously_unscoped.filter(pk=device.pk).update(vehicle=vehicle)
        made.append(Device.dangerously_unscoped.select_related("organization").get(pk=device.pk))
    return made


@pytest.fixture
def events(monkeypatch):
    """The live events pings_ingest hands to the event bus, in order."""
    emitted = []
    monkeypatch.setattr(pings, "emit", emitted.append)
    return emitted


def drive(n: int, *, start: int = 0, seed: int = 1) -> list[Fix]:
    """A plausible drive with what phones really send mixed in: repeated times with other
    event ids, missing fields, stationary jitter, a poor fix, a mock fix, a jump, attributes."""
    rng = random.Random(seed)
    fixes = []
    lat = -29.9
    for i in range(start, start + n):
        moving = i % 17 != 5
        lat += 0.0003 if moving else 0.0
        fix = Fix(
            fix_time=BASE + dt.timedelta(seconds=5 * i),
            lat=lat,
            lon=-71.25 + rng.uniform(-1e-6, 1e-6),
            event_id=f"e{i}" if i % 3 else "",
            accuracy_m=None if i % 11 == 0 else rng.choice([4.0, 6.5, 12.0]),
            speed_mps=None if i % 7 == 0 else (8.0 if moving else 0.0),
            heading_deg=None if i % 5 == 0 else 12.5,
            altitude_m=None if i % 4 else 30.0,
            battery_pct=None if i % 9 == 0 else 80,
            charging=None if i % 2 else True,
            moving=None if i % 13 == 0 else moving,
            mock=i % 29 == 3,
            attributes={"n": i, "note": "ñandú ✓", "nested": {"a": [1, 2.5, None]}}
            if i % 10 == 0
            else {},
        )
        if i % 31 == 7:
            fix.accuracy_m = 900.0  # poor accuracy
        if i % 37 == 11:
            fix.lat += 2.0  # an impossible jump
        fixes.append(fix)
        if i % 23 == 4:  # same fix time, another event id: a second fix
            fixes.append(replace(fix, event_id=f"again{i}", attributes={}))
    return fixes


def copies(fixes: list[Fix]) -> list[Fix]:
    return [replace(fix, flags=0, attributes=dict(fix.attributes)) for fix in fixes]


def stored_rows(device) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT organization_id, fix_time, event_id, received_at, ST_AsEWKT(location), "
            "accuracy_m, speed_mps, heading_deg, altitude_m, battery_pct, charging, moving, "
            "mock, source, flags, attributes FROM tracking_ping WHERE device_id = %s "
            "ORDER BY fix_time, event_id",
            [device.pk],
        )
        return cursor.fetchall()


def state(device) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT organization_id, fix_time, received_at, ST_AsEWKT(location), accuracy_m, "
            "speed_mps, heading_deg, battery_pct, moving, source "
            "FROM tracking_deviceposition WHERE device_id = %s",
            [device.pk],
        )
        position = cursor.fetchone()
        cursor.execute("SELECT last_seen_at FROM carriers_device WHERE id = %s", [device.pk])
        return position, cursor.fetchone()[0]


def ingest_both(monkeypatch, pair, events, fixes, *, received_at=None, source="native"):
    """The same fixes through the COPY path (first device) and the statement path (second);
    returns both results and both events (device and vehicle ids left out)."""
    outcome = []
    for device, threshold in zip(pair, (1, 10**9), strict=True):
        monkeypatch.setattr(bulk, "COPY_MIN_FIXES", threshold)
        before = len(events)
        result = pings_ingest(
            device=device, fixes=copies(fixes), source=source, received_at=received_at
        )
        emitted = [
            {k: v for k, v in event.payload.items() if k not in {"id", "device"}}
            for event in events[before:]
        ]
        outcome.append((result, emitted))
    return outcome


def assert_same_storage(pair):
    copied, stated = pair
    assert stored_rows(copied) == stored_rows(stated)
    assert state(copied) == state(stated)


def test_a_large_batch_is_copied_and_equals_the_statement_path(monkeypatch, pair, events):
    fixes = drive(300)
    (copied, copied_events), (stated, stated_events) = ingest_both(monkeypatch, pair, events, fixes)
    assert copied == stated
    assert copied.stored == len(fixes) and copied.flagged > 0 and copied.position_moved
    assert copied_events == stated_events and len(copied_events) == 1
    assert_same_storage(pair)
    flags = {row[14] for row in stored_rows(pair[0])}
    assert {0, int(PingFlag.POOR_ACCURACY), int(PingFlag.MOCK)} <= flags


@pytest.mark.django_db(transaction=True)  # the real BEGIN … ROLLBACK, not a savepoint
def test_replays_fall_back_and_count_duplicates_like_the_statement_path(monkeypatch, pair, events):
    ingest_both(monkeypatch, pair, events, drive(120))
    # Half replayed, half new: the COPY fails on the first stored key, is rolled back, and the
    # batch goes through ON CONFLICT DO NOTHING.
    second = drive(120, start=60)
    (copied, copied_events), (stated, stated_events) = ingest_both(
        monkeypatch, pair, events, second, received_at=NOW + dt.timedelta(minutes=1)
    )
    assert copied == stated
    assert copied.duplicates > 0 and copied.stored > 0
    assert copied_events == stated_events
    assert_same_storage(pair)
    # A full replay: nothing stored, nothing moved, still a success.
    (copied, copied_events), (stated, _) = ingest_both(monkeypatch, pair, events, second)
    assert copied == stated and copied.stored == 0 and not copied.position_moved
    assert copied_events == []
    assert_same_storage(pair)


def test_late_and_out_of_order_batches_equal_the_statement_path(monkeypatch, pair, events):
    fixes = drive(400, seed=7)
    random.Random(3).shuffle(fixes)
    newest, late = fixes[:250], fixes[250:]
    for part in (newest, late):
        (copied, copied_events), (stated, stated_events) = ingest_both(
            monkeypatch, pair, events, part
        )
        assert copied == stated and copied_events == stated_events
        assert_same_storage(pair)


def test_inside_an_open_transaction_a_replay_rolls_back_only_its_savepoint(
    monkeypatch, pair, events
):
    monkeypatch.setattr(bulk, "COPY_MIN_FIXES", 1)
    device = pair[0]
    fixes = drive(80)
    with transaction.atomic():
        first = pings_ingest(device=device, fixes=copies(fixes), source="native")
        again = pings_ingest(
            device=device, fixes=copies(fixes[40:] + drive(10, start=80)), source="native"
        )
    assert first.stored == len(fixes)
    assert again.duplicates == len(fixes) - 40 and again.stored == 10
    assert len(stored_rows(device)) == len(fixes) + 10


def test_gpx_and_other_sources_are_stored_with_their_source(monkeypatch, pair, events):
    ingest_both(monkeypatch, pair, events, drive(90), source="gpx")
    assert {row[13] for row in stored_rows(pair[0])} == {"gpx"}
    assert_same_storage(pair)


# ---------------------------------------------------------------------------------------------
# flag_fixes: the rewrite against the implementation it replaced
# ---------------------------------------------------------------------------------------------


def flag_fixes_before(fixes, *, reference, received_at, retention_days):
    """tracking/ingest/pings.py's flag_fixes before issue 19, verbatim but for the settings
    read through django.conf (same values)."""
    from django.conf import settings as conf

    future_limit = received_at + dt.timedelta(seconds=conf.PING_MAX_FUTURE_S)
    old_limit = received_at - dt.timedelta(days=retention_days)
    max_accuracy_m, max_speed_mps = conf.PING_MAX_ACCURACY_M, conf.PING_MAX_SPEED_MPS
    for fix in fixes:
        if fix.accuracy_m is not None and fix.accuracy_m > max_accuracy_m:
            fix.flags |= PingFlag.POOR_ACCURACY
        if fix.speed_mps is not None and fix.speed_mps > max_speed_mps:
            fix.flags |= PingFlag.IMPOSSIBLE_SPEED
        if fix.mock:
            fix.flags |= PingFlag.MOCK
        if not fix.valid:
            fix.flags |= PingFlag.INVALID
        if fix.fix_time > future_limit:
            fix.flags |= PingFlag.FUTURE
        if fix.fix_time < old_limit:
            fix.flags |= PingFlag.TOO_OLD
    for fix in sorted(fixes, key=lambda f: f.fix_time):
        if fix.flags & OUTLIER_FLAGS:
            continue
        if reference is None:
            reference = _Reference(fix.fix_time, fix.lat, fix.lon, fix.accuracy_m)
            continue
        if fix.fix_time <= reference.fix_time:
            continue
        meters = distance_m(reference.lat, reference.lon, fix.lat, fix.lon)
        seconds = (fix.fix_time - reference.fix_time).total_seconds()
        slack = (reference.accuracy_m or 0) + (fix.accuracy_m or 0)
        if meters - slack > max_speed_mps * seconds:
            fix.flags |= PingFlag.IMPOSSIBLE_SPEED
            continue
        still = fix.moving is not True and (fix.speed_mps or 0) < JITTER_SPEED_MPS
        if still and meters <= max(fix.accuracy_m or 0, JITTER_MIN_RADIUS_M):
            fix.flags |= PingFlag.STATIONARY_JITTER
            continue
        reference = _Reference(fix.fix_time, fix.lat, fix.lon, fix.accuracy_m)
    return reference


fix_strategy = st.builds(
    Fix,
    fix_time=st.integers(min_value=-400, max_value=400).map(
        lambda s: NOW + dt.timedelta(seconds=s * 3)
    ),
    lat=st.floats(min_value=-29.91, max_value=-29.89),
    lon=st.floats(min_value=-71.26, max_value=-71.24),
    event_id=st.sampled_from(["", "a", "b"]),
    accuracy_m=st.one_of(st.none(), st.floats(min_value=0, max_value=400)),
    speed_mps=st.one_of(st.none(), st.floats(min_value=0, max_value=120)),
    moving=st.one_of(st.none(), st.booleans()),
    mock=st.booleans(),
    valid=st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fixes=st.lists(fix_strategy, max_size=40),
    ordered=st.booleans(),
    reference=st.one_of(st.none(), fix_strategy),
    retention_days=st.sampled_from([0, 1, 30]),
)
def test_flag_fixes_decides_exactly_as_before(fixes, ordered, reference, retention_days):
    if ordered:
        fixes.sort(key=lambda f: f.fix_time)
    ref = reference and _Reference(
        reference.fix_time, reference.lat, reference.lon, reference.accuracy_m
    )
    mine, theirs = copies(fixes), copies(fixes)
    kwargs = {"received_at": NOW, "retention_days": retention_days}
    got = flag_fixes(mine, reference=ref, **kwargs)
    expected = flag_fixes_before(theirs, reference=ref, **kwargs)
    assert [f.flags for f in mine] == [f.flags for f in theirs]
    assert got == expected


def test_flag_fixes_on_a_real_drive_flags_as_before():
    fixes = drive(500, seed=11)
    for received_at in (NOW, NOW - dt.timedelta(minutes=45)):
        mine, theirs = copies(fixes), copies(fixes)
        kwargs = {"reference": None, "received_at": received_at, "retention_days": 30}
        assert flag_fixes(mine, **kwargs) == flag_fixes_before(theirs, **kwargs)
        assert [f.flags for f in mine] == [f.flags for f in theirs]
        assert any(f.flags for f in mine) and any(not f.flags for f in mine)
