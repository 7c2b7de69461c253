"""Storing GPS fixes: flag outliers, insert in bulk idempotently, move the last position forward.

Rules (DESIGN.md "Events and state"):
- the idempotency key is (organization, device, fix time, client event id): a replay inserts
  nothing (`ON CONFLICT DO NOTHING`) and is still a success;
- late and out-of-order fixes are stored; the last position only ever moves forward in time;
- outliers are stored with flags and never move the last position: accuracy worse than
  `PING_MAX_ACCURACY_M`, reported speed or speed implied from the last good fix above
  `PING_MAX_SPEED_MPS`,
  mock locations, fixes the device marked invalid, fix times in the future (beyond
  `PING_MAX_FUTURE_S` of clock skew) or older than the organization's retention;
- stationary jitter (not moving, displacement within accuracy) is flagged and keeps the marker
  where it was, but still counts as a sign of life (the position's time moves forward).

Everything is written by one statement (atomic); the live push happens after commit and may
fail without losing anything (the ping is already durable).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.errors import DeadlockDetected, UniqueViolation

from carriers.models import Device
from control_tower.events import emit
from tracking.eta.triggers import eta_on_position_on_commit
from tracking.geo import EARTH_RADIUS_M
from tracking.ingest import bulk
from tracking.ingest.fixes import Fix
from tracking.ingest.vehicles import vehicle_moved_event, vehicle_route
from tracking.models import PingFlag

# Flags that keep a fix off the map. Stationary jitter is not one: it refreshes the time.
OUTLIER_FLAGS = (
    PingFlag.POOR_ACCURACY
    | PingFlag.IMPOSSIBLE_SPEED
    | PingFlag.MOCK
    | PingFlag.FUTURE
    | PingFlag.TOO_OLD
    | PingFlag.INVALID
)
JITTER_SPEED_MPS = 0.5  # below this a phone is "not moving"
JITTER_MIN_RADIUS_M = 10.0  # when the phone claims better accuracy than this


@dataclass(frozen=True)
class IngestResult:
    received: int  # fixes in the request (after removing in-request repeats)
    stored: int  # new rows
    duplicates: int  # already stored before (replays)
    flagged: int  # stored, but kept off the map
    position_moved: bool

    def as_dict(self) -> dict:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "flagged": self.flagged,
            "position_moved": self.position_moved,
        }


@dataclass
class _Reference:
    """The last fix that moved the marker: what the next fix is judged against."""

    fix_time: datetime
    lat: float
    lon: float
    accuracy_m: float | None


def flag_fixes(
    fixes: list[Fix], *, reference: _Reference | None, received_at: datetime, retention_days: int
) -> _Reference | None:
    """Set `fix.flags` on each fix; returns the new reference (the last fix that moves the
    marker), or the old one. Fixes older than the reference are judged only on their own
    (they are late and will not move anything anyway).

    Written for speed (a batch has a thousand fixes and this was a third of the storage
    layer's Python): settings and functions read into locals once, the reference kept as
    plain locals inside the loop, the haversine of tracking.geo.distance_m inlined with the
    very same operations (so the same floats and the same flags)."""
    future_limit = received_at + timedelta(seconds=settings.PING_MAX_FUTURE_S)
    old_limit = received_at - timedelta(days=retention_days)
    max_accuracy_m, max_speed_mps = settings.PING_MAX_ACCURACY_M, settings.PING_MAX_SPEED_MPS
    poor, too_fast, mock, invalid = (
        int(PingFlag.POOR_ACCURACY),
        int(PingFlag.IMPOSSIBLE_SPEED),
        int(PingFlag.MOCK),
        int(PingFlag.INVALID),
    )
    future, too_old, jitter = (
        int(PingFlag.FUTURE),
        int(PingFlag.TOO_OLD),
        int(PingFlag.STATIONARY_JITTER),
    )
    in_order = True
    previous = None
    for fix in fixes:
        flags = fix.flags
        accuracy, speed, when = fix.accuracy_m, fix.speed_mps, fix.fix_time
        if accuracy is not None and accuracy > max_accuracy_m:
            flags |= poor
        if speed is not None and speed > max_speed_mps:
            # The device's own speed claim, judged like the speed implied between fixes.
            flags |= too_fast
        if fix.mock:
            flags |= mock
        if not fix.valid:
            flags |= invalid
        if when > future_limit:
            flags |= future
        if when < old_limit:
            flags |= too_old
        fix.flags = flags
        if previous is not None and when < previous:
            in_order = False
        previous = when
    # Phones send in time order: skip the sort then (sorted() is stable, so equal times keep
    # their order either way).
    ordered = fixes if in_order else sorted(fixes, key=_fix_time)
    outliers = int(OUTLIER_FLAGS)
    if reference is not None:
        r_time, r_lat, r_lon, r_acc = (
            reference.fix_time,
            reference.lat,
            reference.lon,
            reference.accuracy_m,
        )
    moved = False
    radians, sin, cos, asin, sqrt = math.radians, math.sin, math.cos, math.asin, math.sqrt
    for fix in ordered:
        if fix.flags & outliers:
            continue
        if reference is None:
            reference = fix  # any object with the four attributes; made a _Reference below
            r_time, r_lat, r_lon, r_acc = fix.fix_time, fix.lat, fix.lon, fix.accuracy_m
            moved = True
            continue
        when = fix.fix_time
        if when <= r_time:
            continue
        lat, lon, accuracy = fix.lat, fix.lon, fix.accuracy_m
        # tracking.geo.distance_m, operation for operation.
        p1, p2 = radians(r_lat), radians(lat)
        dp, dl = p2 - p1, radians(lon - r_lon)
        h = sin(dp / 2) ** 2 + cos(p1) * cos(p2) * sin(dl / 2) ** 2
        meters = 2 * EARTH_RADIUS_M * asin(min(1.0, sqrt(h)))
        seconds = (when - r_time).total_seconds()
        slack = (r_acc or 0) + (accuracy or 0)
        if meters - slack > max_speed_mps * seconds:
            fix.flags |= too_fast
            continue
        still = fix.moving is not True and (fix.speed_mps or 0) < JITTER_SPEED_MPS
        if still and meters <= max(accuracy or 0, JITTER_MIN_RADIUS_M):
            fix.flags |= jitter
            continue
        r_time, r_lat, r_lon, r_acc = when, lat, lon, accuracy
        moved = True
    if moved:
        return _Reference(r_time, r_lat, r_lon, r_acc)
    return reference


def _fix_time(fix: Fix) -> datetime:
    return fix.fix_time


# The whole write is one statement (so one round trip, atomic without an explicit transaction):
# the pings, the forward-only last position, and the device's "last seen".
INSERT_PINGS = """
INSERT INTO tracking_ping (
    organization_id, device_id, fix_time, event_id, received_at, location, accuracy_m,
    speed_mps, heading_deg, altitude_m, battery_pct, charging, moving, mock, source, flags,
    attributes
)
SELECT %(organization)s, %(device)s, t.fix_time, t.event_id, %(received_at)s,
       ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), t.accuracy_m, t.speed_mps, t.heading_deg,
       t.altitude_m, t.battery_pct, t.charging, t.moving, t.mock, %(source)s, t.flags,
       t.attributes
-- The batch travels as one JSON document that PostgreSQL unpacks in C: much cheaper than
-- binding fourteen arrays of a thousand values each from Python.
FROM json_to_recordset(%(batch)s::json) AS t(
    fix_time timestamptz, event_id varchar, lon float8, lat float8, accuracy_m float8,
    speed_mps float8, heading_deg float8, altitude_m float8, battery_pct int2, charging bool,
    moving bool, mock bool, flags int4, attributes jsonb
)
ON CONFLICT DO NOTHING
RETURNING 1
"""

# The same for one fix (most requests: a phone reporting live): scalar parameters cost far
# less to send than fourteen one-element arrays.
INSERT_ONE_PING = """
INSERT INTO tracking_ping (
    organization_id, device_id, fix_time, event_id, received_at, location, accuracy_m,
    speed_mps, heading_deg, altitude_m, battery_pct, charging, moving, mock, source, flags,
    attributes
) VALUES (
    %(organization)s, %(device)s, %(fix_time)s::timestamptz, %(event_id)s, %(received_at)s,
    ST_SetSRID(ST_MakePoint(%(lon)s::float8, %(lat)s::float8), 4326), %(accuracy_m)s::float8,
    %(speed_mps)s::float8, %(heading_deg)s::float8, %(altitude_m)s::float8,
    %(battery_pct)s::int2, %(charging)s::bool, %(moving)s::bool, %(mock)s::bool, %(source)s,
    %(flags)s::int4, %(attributes)s::jsonb
)
ON CONFLICT DO NOTHING
RETURNING 1
"""

# Moves forward only: the WHERE makes an older fix (late, replayed, concurrent) a no-op.
UPSERT_POSITION = """
INSERT INTO tracking_deviceposition (
    device_id, organization_id, fix_time, received_at, location, accuracy_m, speed_mps,
    heading_deg, battery_pct, moving, source
) VALUES (
    %(device)s, %(organization)s, %(p_fix_time)s, %(received_at)s,
    ST_SetSRID(ST_MakePoint(%(p_lon)s, %(p_lat)s), 4326), %(p_accuracy_m)s, %(p_speed_mps)s,
    %(p_heading_deg)s, %(p_battery_pct)s, %(p_moving)s, %(source)s
)
ON CONFLICT (device_id) DO UPDATE SET
    fix_time = EXCLUDED.fix_time,
    received_at = EXCLUDED.received_at,
    location = CASE WHEN %(p_moves)s THEN EXCLUDED.location
                    ELSE tracking_deviceposition.location END,
    accuracy_m = CASE WHEN %(p_moves)s THEN EXCLUDED.accuracy_m
                      ELSE tracking_deviceposition.accuracy_m END,
    speed_mps = EXCLUDED.speed_mps,
    heading_deg = COALESCE(EXCLUDED.heading_deg, tracking_deviceposition.heading_deg),
    battery_pct = COALESCE(EXCLUDED.battery_pct, tracking_deviceposition.battery_pct),
    moving = EXCLUDED.moving,
    source = EXCLUDED.source
WHERE tracking_deviceposition.fix_time < EXCLUDED.fix_time
RETURNING ST_Y(location) AS lat, ST_X(location) AS lon, fix_time
"""

TOUCH_DEVICE = """
UPDATE carriers_device SET last_seen_at = %(received_at)s
WHERE id = %(device)s
  AND (last_seen_at IS NULL OR last_seen_at < %(received_at)s - interval '30 seconds')
RETURNING 1
"""

CURRENT_POSITION = """
SELECT fix_time, ST_Y(location), ST_X(location), accuracy_m
FROM tracking_deviceposition WHERE device_id = %s
"""


def _write_statement(with_position: bool, insert: str = INSERT_PINGS) -> str:
    position = f", position AS ({UPSERT_POSITION})" if with_position else ""
    moved = (
        "(SELECT json_build_object('lat', lat, 'lon', lon, 'fix_time', fix_time) FROM position)"
        if with_position
        else "NULL::json"
    )
    return (  # module constants only; values go as parameters
        f"WITH stored AS ({insert}){position}, seen AS ({TOUCH_DEVICE}) "
        f"SELECT (SELECT count(*) FROM stored), {moved}"
    )


WRITE_WITH_POSITION = _write_statement(True)
WRITE_PINGS_ONLY = _write_statement(False)
WRITE_ONE_WITH_POSITION = _write_statement(True, INSERT_ONE_PING)
WRITE_ONE_ONLY = _write_statement(False, INSERT_ONE_PING)


def dedupe(fixes: list[Fix]) -> list[Fix]:
    """One fix per idempotency key (the first), as the unique constraint would keep."""
    previous = None
    for fix in fixes:  # the usual case, fix times strictly increasing: nothing can repeat
        when = fix.fix_time
        if previous is not None and when <= previous:
            break
        previous = when
    else:
        return fixes
    seen: dict[tuple, Fix] = {}
    for fix in fixes:
        seen.setdefault(fix.key, fix)
    return list(seen.values())


@dataclass(frozen=True)
class DeviceRef:
    """What storing a fix needs to know about its device (from the authenticated row)."""

    id: int
    organization_id: int
    carrier_id: int | None
    driver_id: int | None
    vehicle_id: int | None
    retention_days: int

    @classmethod
    def of(cls, device: Device) -> DeviceRef:
        return cls(
            id=device.pk,
            organization_id=device.organization_id,
            carrier_id=device.carrier_id,
            driver_id=device.driver_id,
            vehicle_id=device.vehicle_id,
            retention_days=device.organization.ping_retention_days,
        )


@dataclass
class WritePlan:
    """The one statement that stores a request's fixes, and what it may do to the position."""

    fixes: list[Fix]
    statement: str
    params: dict
    candidate: dict | None


def plan_flags(
    ref: DeviceRef, fixes: list[Fix], current_row, *, received_at: datetime
) -> dict | None:
    """Flag the fixes against the current position (`CURRENT_POSITION`'s row or None);
    returns what the last position would become (`_position_candidate`) or None."""
    before = _Reference(*current_row) if current_row else None
    reference = flag_fixes(
        fixes, reference=before, received_at=received_at, retention_days=ref.retention_days
    )
    return _position_candidate(fixes, before, reference)


def plan_write(
    ref: DeviceRef, fixes: list[Fix], current_row, *, source: str, received_at: datetime
) -> WritePlan:
    """Flag the fixes against the current position (`CURRENT_POSITION`'s row or None) and
    build the write. Pure: the sync and async paths both execute it."""
    candidate = plan_flags(ref, fixes, current_row, received_at=received_at)
    return _plan_statement(ref, fixes, candidate, source=source, received_at=received_at)


def _plan_statement(ref, fixes, candidate, *, source, received_at) -> WritePlan:
    params = _columns(fixes, ref.organization_id, ref.id, received_at, source)
    single = len(fixes) == 1
    if candidate is None:
        return WritePlan(fixes, WRITE_ONE_ONLY if single else WRITE_PINGS_ONLY, params, None)
    statement = WRITE_ONE_WITH_POSITION if single else WRITE_WITH_POSITION
    return WritePlan(fixes, statement, {**params, **candidate}, candidate)


def plan_outcome(ref: DeviceRef, plan: WritePlan, stored: int, position) -> tuple:
    """(IngestResult, live event data or None) from what the write statement returned."""
    moved = position is not None
    event = None
    if moved:
        if isinstance(position, str):
            position = json.loads(position)
        newest = plan.candidate["newest"]
        event = {
            "device": ref.id,
            "driver": ref.driver_id,
            "vehicle": ref.vehicle_id,
            "lat": position["lat"],
            "lon": position["lon"],
            "fix_time": position["fix_time"],
            "speed_mps": newest.speed_mps,
            "heading_deg": newest.heading_deg,
            "battery_pct": newest.battery_pct,
        }
    fixes = plan.fixes
    flagged = sum(1 for fix in fixes if fix.flags & OUTLIER_FLAGS)
    return IngestResult(len(fixes), stored, len(fixes) - stored, flagged, moved), event


def pings_ingest(
    *, device: Device, fixes: list[Fix], source: str, received_at: datetime | None = None
) -> IngestResult:
    """Store the fixes of one device (all or nothing) and move its last position.

    The organization and device come from the authenticated device row, never from the
    payload. Safe to call again with the same fixes. Two round trips: read the current
    position (to judge the new fixes against it), then one statement that writes everything;
    a large batch is copied instead (`_store_by_copy`).
    (tracking/ingest/fast.py runs the same plan on an async connection.)
    """
    received_at = received_at or timezone.now()
    fixes = dedupe(fixes)
    if not fixes:
        return IngestResult(0, 0, 0, 0, False)
    ref = DeviceRef.of(device)
    with connection.cursor() as cursor:
        cursor.execute(CURRENT_POSITION, [ref.id])
        current = cursor.fetchone()
    candidate = plan_flags(ref, fixes, current, received_at=received_at)
    stored = None
    if len(fixes) >= bulk.COPY_MIN_FIXES:
        stored, position = _store_by_copy(ref, fixes, candidate, source, received_at)
    if stored is None:  # small, or a replay in the batch: the one-statement path
        plan = _plan_statement(ref, fixes, candidate, source=source, received_at=received_at)
        with connection.cursor() as cursor:
            cursor.execute(plan.statement, plan.params)
            stored, position = cursor.fetchone()
    result, event = plan_outcome(ref, WritePlan(fixes, "", {}, candidate), stored, position)
    if event is not None:
        vehicle_id, route_id = vehicle_route(ref)
        if vehicle_id is not None:  # live only: no outbox row for a ping
            emit(vehicle_moved_event(ref, event, vehicle_id=vehicle_id, route_id=route_id))
    if result.position_moved:  # its routes' ETAs follow, debounced (tracking/eta/triggers.py)
        eta_on_position_on_commit(ref=ref, received_at=received_at)
    return result


# After a COPY, in the same transaction: the forward-only last position and "last seen".
FOLLOW_WITH_POSITION = (
    f"WITH position AS ({UPSERT_POSITION}), seen AS ({TOUCH_DEVICE}) "
    "SELECT (SELECT json_build_object('lat', lat, 'lon', lon, 'fix_time', fix_time) "
    "FROM position)"
)
FOLLOW_TOUCH_ONLY = f"WITH seen AS ({TOUCH_DEVICE}) SELECT NULL::json"


def _store_by_copy(ref: DeviceRef, fixes, candidate, source, received_at) -> tuple:
    """(stored, position) after copying the batch and moving the position in one transaction,
    or (None, None) if a row was already stored: then nothing of it was kept (rolled back),
    and the caller stores the batch with `ON CONFLICT DO NOTHING` (bulk.py says why)."""
    params = {"organization": ref.organization_id, "device": ref.id, "received_at": received_at}
    if candidate is not None:
        params.update(candidate, source=source)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            bulk.copy_fixes(
                cursor.cursor,  # the psycopg cursor: Django's wrapper has no COPY
                fixes,
                organization_id=ref.organization_id,
                device_id=ref.id,
                received_at=received_at,
                source=source,
            )
            cursor.execute(FOLLOW_WITH_POSITION if candidate else FOLLOW_TOUCH_ONLY, params)
            (position,) = cursor.fetchone()
    except (UniqueViolation, DeadlockDetected):
        # A stored key (a replay), or two overlapping batches of one device copied at once in
        # opposite orders: rolled back, and ON CONFLICT DO NOTHING stores what is new.
        return None, None
    return len(fixes), position


def _row(fix: Fix) -> dict:
    return {
        "fix_time": fix.fix_time.isoformat(),
        "event_id": fix.event_id,
        "lon": fix.lon,
        "lat": fix.lat,
        "accuracy_m": fix.accuracy_m,
        "speed_mps": fix.speed_mps,
        "heading_deg": fix.heading_deg,
        "altitude_m": fix.altitude_m,
        "battery_pct": fix.battery_pct,
        "charging": fix.charging,
        "moving": fix.moving,
        "mock": fix.mock,
        "flags": int(fix.flags),
        "attributes": fix.attributes,
    }


def _columns(fixes, organization_id, device_id, received_at, source) -> dict:
    """Parameters of the write: scalars for one fix (INSERT_ONE_PING), else one JSON batch."""
    params = {
        "organization": organization_id,
        "device": device_id,
        "received_at": received_at,
        "source": source,
    }
    if len(fixes) == 1:
        from psycopg.types.json import Jsonb

        row = _row(fixes[0])
        row["fix_time"] = fixes[0].fix_time
        row["attributes"] = Jsonb(row["attributes"])
        return {**params, **row}
    return {**params, "batch": json.dumps([_row(fix) for fix in fixes])}


def _position_candidate(fixes, before, reference) -> dict | None:
    """What the last position would become: the time of the newest fix that is not an
    outlier, the location of the reference (a jitter fix keeps the marker where it was).
    None when nothing here is newer than the current position."""
    alive = [f for f in fixes if not f.flags & OUTLIER_FLAGS]
    if not alive or reference is None:
        return None
    newest = max(alive, key=lambda f: f.fix_time)
    if before is not None and newest.fix_time <= before.fix_time:
        return None
    return {
        "newest": newest,
        "p_fix_time": newest.fix_time,
        "p_lat": reference.lat,
        "p_lon": reference.lon,
        "p_accuracy_m": reference.accuracy_m,
        "p_speed_mps": newest.speed_mps,
        "p_heading_deg": newest.heading_deg,
        "p_battery_pct": newest.battery_pct,
        "p_moving": newest.moving,
        "p_moves": before is None or reference.fix_time > before.fix_time,
    }
