"""Group commit of single fixes on the device fast path (tracking/ingest/fast.py).

Phones send one fix per request. Stored one by one, each costs two round trips and a commit;
concurrent requests arriving within `GROUP_WINDOW_S` of each other are instead stored
together: one read of their devices' positions, one statement that writes every ping, every
last position and every "last seen", one commit. Each request is answered only after that
commit (acked means durable), with its own result, exactly as if it had been alone:

- the fixes are flagged one device at a time by the same code (`pings.plan_flags`) against
  that device's position;
- a group holds at most one fix per device (a second fix of the same device waits for the next
  group, so it is judged after the first, as it would be one request after the other);
- the last position moves forward only (the same `WHERE fix_time <` guard), replays insert
  nothing (`ON CONFLICT DO NOTHING`), and a failure fails every request of the group (each
  phone sends again; a repeat is stored once).
"""

from __future__ import annotations

import asyncio
import json
import weakref

from tracking.ingest.pings import (
    DeviceRef,
    WritePlan,
    _row,
    plan_flags,
    plan_outcome,
)

GROUP_WINDOW_S = 0.002  # how long the first fix of a group waits for others
GROUP_MAX = 64

POSITIONS = """
SELECT device_id, fix_time, ST_Y(location), ST_X(location), accuracy_m
FROM tracking_deviceposition WHERE device_id = ANY(%s)
"""

_UPSERT = """
INSERT INTO tracking_deviceposition (
    device_id, organization_id, fix_time, received_at, location, accuracy_m, speed_mps,
    heading_deg, battery_pct, moving, source
)
SELECT device_id, organization_id, fix_time, received_at,
       ST_SetSRID(ST_MakePoint(lon, lat), 4326), accuracy_m, speed_mps, heading_deg,
       battery_pct, moving, source
FROM candidates WHERE moves = {moves}
ON CONFLICT (device_id) DO UPDATE SET
    fix_time = EXCLUDED.fix_time,
    received_at = EXCLUDED.received_at,
    location = CASE WHEN {moves} THEN EXCLUDED.location
                    ELSE tracking_deviceposition.location END,
    accuracy_m = CASE WHEN {moves} THEN EXCLUDED.accuracy_m
                      ELSE tracking_deviceposition.accuracy_m END,
    speed_mps = EXCLUDED.speed_mps,
    heading_deg = COALESCE(EXCLUDED.heading_deg, tracking_deviceposition.heading_deg),
    battery_pct = COALESCE(EXCLUDED.battery_pct, tracking_deviceposition.battery_pct),
    moving = EXCLUDED.moving,
    source = EXCLUDED.source
WHERE tracking_deviceposition.fix_time < EXCLUDED.fix_time
RETURNING device_id, ST_Y(location) AS lat, ST_X(location) AS lon, fix_time
"""

# pings.UPSERT_POSITION for many devices: `moves` (does the marker move, or only its time?)
# is per device, and ON CONFLICT DO UPDATE sees only the table's columns, so the devices whose
# marker moves and those whose marker stays are two statements (on different devices).
# Module constants only; the values go as parameters.
WRITE_GROUP = f"""
WITH batch AS (
    SELECT * FROM json_to_recordset(%(batch)s::json) AS t(
        organization_id int8, device_id int8, fix_time timestamptz, event_id varchar,
        received_at timestamptz, lon float8, lat float8, accuracy_m float8, speed_mps float8,
        heading_deg float8, altitude_m float8, battery_pct int2, charging bool, moving bool,
        mock bool, source varchar, flags int4, attributes jsonb
    )
), stored AS (
    INSERT INTO tracking_ping (
        organization_id, device_id, fix_time, event_id, received_at, location, accuracy_m,
        speed_mps, heading_deg, altitude_m, battery_pct, charging, moving, mock, source, flags,
        attributes
    )
    SELECT organization_id, device_id, fix_time, event_id, received_at,
           ST_SetSRID(ST_MakePoint(lon, lat), 4326), accuracy_m, speed_mps, heading_deg,
           altitude_m, battery_pct, charging, moving, mock, source, flags, attributes
    FROM batch
    ON CONFLICT DO NOTHING
    RETURNING device_id
), candidates AS (
    SELECT * FROM json_to_recordset(%(positions)s::json) AS p(
        device_id int8, organization_id int8, fix_time timestamptz, received_at timestamptz,
        lon float8, lat float8, accuracy_m float8, speed_mps float8, heading_deg float8,
        battery_pct int2, moving bool, source varchar, moves bool
    )
), moved AS ({_UPSERT.format(moves="true")}
), refreshed AS ({_UPSERT.format(moves="false")}
), seen AS (
    UPDATE carriers_device d SET last_seen_at = b.received_at
    FROM batch b
    WHERE d.id = b.device_id
      AND (d.last_seen_at IS NULL OR d.last_seen_at < b.received_at - interval '30 seconds')
    RETURNING 1
)
SELECT (SELECT json_agg(device_id) FROM stored),
       (SELECT json_agg(json_build_object(
            'device', device_id, 'lat', lat, 'lon', lon, 'fix_time', fix_time))
        FROM (SELECT * FROM moved UNION ALL SELECT * FROM refreshed) AS x)
"""  # noqa: S608


class _Item:
    __slots__ = ("ref", "fix", "source", "received_at", "future")

    def __init__(self, ref: DeviceRef, fix, source: str, received_at, future):
        self.ref, self.fix, self.source = ref, fix, source
        self.received_at, self.future = received_at, future


class GroupCommit:
    """The fixes waiting on one event loop, and the task that takes them in groups."""

    def __init__(self, pool_of):
        self.pool_of = pool_of  # async () -> the loop's AsyncConnectionPool
        self.waiting: list[_Item] = []
        self.collector: asyncio.Task | None = None
        self.writes: set[asyncio.Task] = set()

    async def store(self, ref: DeviceRef, fix, *, source: str, received_at) -> tuple:
        """(IngestResult, live event data or None) for one fix, after its group's commit."""
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(_Item(ref, fix, source, received_at, future))
        if self.collector is None:
            self.collector = asyncio.create_task(self._collect())
        return await future

    async def _collect(self) -> None:
        try:
            while self.waiting:
                await asyncio.sleep(GROUP_WINDOW_S)
                group, later, devices = [], [], set()
                for item in self.waiting:
                    if item.ref.id in devices or len(group) >= GROUP_MAX:
                        later.append(item)
                    else:
                        devices.add(item.ref.id)
                        group.append(item)
                self.waiting = later
                # Several groups may be written at once, each on its own connection.
                task = asyncio.create_task(self._write(group))
                self.writes.add(task)
                task.add_done_callback(self.writes.discard)
        finally:
            self.collector = None

    async def _write(self, group: list[_Item]) -> None:
        try:
            outcomes = await _store_group(await self.pool_of(), group)
        except BaseException as exc:  # every request of the group fails (and is retried)
            for item in group:
                if not item.future.done():
                    item.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for item, outcome in zip(group, outcomes, strict=True):
            if not item.future.done():
                item.future.set_result(outcome)


async def _store_group(pool, group: list[_Item]) -> list[tuple]:
    async with pool.connection() as conn:
        cursor = await conn.execute(POSITIONS, [[item.ref.id for item in group]])
        current = {row[0]: row[1:] for row in await cursor.fetchall()}
        rows, positions, candidates = [], [], []
        for item in group:
            ref, fix = item.ref, item.fix
            candidate = plan_flags(ref, [fix], current.get(ref.id), received_at=item.received_at)
            candidates.append(candidate)
            row = _row(fix)
            row.update(
                organization_id=ref.organization_id,
                device_id=ref.id,
                received_at=item.received_at.isoformat(),
                source=item.source,
            )
            rows.append(row)
            if candidate is not None:
                positions.append(
                    {
                        "device_id": ref.id,
                        "organization_id": ref.organization_id,
                        "fix_time": candidate["p_fix_time"].isoformat(),
                        "received_at": item.received_at.isoformat(),
                        "lon": candidate["p_lon"],
                        "lat": candidate["p_lat"],
                        "accuracy_m": candidate["p_accuracy_m"],
                        "speed_mps": candidate["p_speed_mps"],
                        "heading_deg": candidate["p_heading_deg"],
                        "battery_pct": candidate["p_battery_pct"],
                        "moving": candidate["p_moving"],
                        "source": item.source,
                        "moves": bool(candidate["p_moves"]),
                    }
                )
        cursor = await conn.execute(
            WRITE_GROUP, {"batch": json.dumps(rows), "positions": json.dumps(positions)}
        )
        stored_devices, moved = await cursor.fetchone()
    stored = set(stored_devices or ())
    by_device = {position["device"]: position for position in moved or ()}
    return [
        plan_outcome(
            item.ref,
            WritePlan([item.fix], "", {}, candidate),
            1 if item.ref.id in stored else 0,
            by_device.get(item.ref.id),
        )
        for item, candidate in zip(group, candidates, strict=True)
    ]


_committers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def committer(pool_of) -> GroupCommit:
    """This event loop's group commit (one per loop, like the connection pool)."""
    loop = asyncio.get_running_loop()
    existing = _committers.get(loop)
    if existing is None:
        existing = _committers[loop] = GroupCommit(pool_of)
    return existing
