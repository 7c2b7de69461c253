"""`vehicle.moved`: a device's new position, as the console sees it (keyed by vehicle).

The ingest paths call this after their write: the device's vehicle (or, for a phone bound to a
driver only, the vehicle of that driver's route today) moved. Which vehicle and route a device
belongs to is looked up once and cached in the process for CONSOLE_ROUTE_CACHE_S, so the
hottest path (one fix per request) adds no query in the steady state. Messages are coalesced
per vehicle (control_tower/realtime.py).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection

from control_tower.numbers import finite_or_none
from control_tower.realtime import publish_coalesced_now, publish_coalesced_on_commit

VEHICLE_MOVED = "vehicle.moved"

# The device's vehicle's route (else its driver's): in progress first, else planned for the
# organization's today. Returns (route id, vehicle id) or nothing.
VEHICLE_ROUTE = """
SELECT r.id, r.vehicle_id
FROM tracking_route r JOIN control_tower_organization o ON o.id = r.organization_id
WHERE r.organization_id = %(organization)s
  AND (r.vehicle_id = %(vehicle)s OR r.driver_id = %(driver)s)
  AND (r.status = 'in_progress'
       OR (r.status = 'planned' AND r.date = (now() AT TIME ZONE o.time_zone)::date))
ORDER BY r.vehicle_id IS NOT DISTINCT FROM %(vehicle)s DESC, r.status = 'in_progress' DESC,
         r.date DESC, r.id
LIMIT 1
"""

_MAX_CACHED = 50_000
_routes: dict[tuple, tuple[float, int | None, int | None]] = {}


def _cache_key(ref) -> tuple:
    return (ref.organization_id, ref.vehicle_id, ref.driver_id)


def _cached(ref):
    hit = _routes.get(_cache_key(ref))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1], hit[2]
    return None


def _remember(ref, row) -> tuple[int | None, int | None]:
    route_id, route_vehicle = row if row else (None, None)
    vehicle_id = ref.vehicle_id or route_vehicle
    if len(_routes) >= _MAX_CACHED:
        _routes.clear()
    _routes[_cache_key(ref)] = (
        time.monotonic() + settings.CONSOLE_ROUTE_CACHE_S,
        vehicle_id,
        route_id,
    )
    return vehicle_id, route_id


def _params(ref) -> dict:
    return {
        "organization": ref.organization_id,
        "vehicle": ref.vehicle_id,
        "driver": ref.driver_id,
    }


def vehicle_moved_data(event: dict, *, vehicle_id: int, route_id: int | None) -> dict:
    """The message body from the ingest's position event (pings.plan_outcome)."""
    speed = event.get("speed_mps")
    return {
        "id": vehicle_id,
        "lat": event["lat"],
        "lon": event["lon"],
        "heading": event.get("heading_deg"),
        "speed_kmh": finite_or_none(None if speed is None else speed * 3.6, digits=1),
        "battery": event.get("battery_pct"),
        "fix_time": event["fix_time"],
        "route": route_id,
    }


def clear_route_cache() -> None:
    """Forget cached device → vehicle/route answers (tests; after a reassignment of vehicles)."""
    _routes.clear()


def publish_vehicle_moved_on_commit(ref, event: dict) -> None:
    """Sync ingest (Django views, GPX imports): look up the vehicle, push after commit.
    A device with no vehicle and no route today has nothing to move on the map."""
    found = _cached(ref)
    if found is None:
        if ref.vehicle_id is None and ref.driver_id is None:
            found = _remember(ref, None)
        else:
            with connection.cursor() as cursor:
                cursor.execute(VEHICLE_ROUTE, _params(ref))
                found = _remember(ref, cursor.fetchone())
    vehicle_id, route_id = found
    if vehicle_id is None:
        return
    publish_coalesced_on_commit(
        organization_id=ref.organization_id,
        carrier_id=ref.carrier_id,
        event=VEHICLE_MOVED,
        key=vehicle_id,
        data=vehicle_moved_data(event, vehicle_id=vehicle_id, route_id=route_id),
    )


async def publish_vehicle_moved_now(ref, event: dict, *, pool) -> None:
    """The async fast path (already committed): `pool` is the caller's async connection pool
    getter, used only when the answer is not cached."""
    found = _cached(ref)
    if found is None:
        if ref.vehicle_id is None and ref.driver_id is None:
            found = _remember(ref, None)
        else:
            async with (await pool()).connection() as conn:
                cursor = await conn.execute(VEHICLE_ROUTE, _params(ref))
                found = _remember(ref, await cursor.fetchone())
    vehicle_id, route_id = found
    if vehicle_id is None:
        return
    await publish_coalesced_now(
        organization_id=ref.organization_id,
        carrier_id=ref.carrier_id,
        event=VEHICLE_MOVED,
        key=vehicle_id,
        data=vehicle_moved_data(event, vehicle_id=vehicle_id, route_id=route_id),
    )
