"""Which vehicle a device's fix moves (and on which route): the aggregate of `vehicle.moved`.

A device's vehicle is its own, else the vehicle of its driver's route (in progress, or planned
for the organization's today). The answer is looked up once and cached in the process for
CONSOLE_ROUTE_CACHE_S, so the hottest path (one fix per request) adds no query in the steady
state.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from control_tower.caches import LocalCache
from control_tower.events.catalog import vehicle_moved

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

_routes = LocalCache(maxsize=50_000, ttl_s=lambda: settings.CONSOLE_ROUTE_CACHE_S)


def _cache_key(ref) -> tuple:
    return (ref.organization_id, ref.vehicle_id, ref.driver_id)


def _cached(ref):
    return _routes.get(_cache_key(ref))


def _remember(ref, row) -> tuple[int | None, int | None]:
    route_id, route_vehicle = row if row else (None, None)
    vehicle_id = ref.vehicle_id or route_vehicle
    _routes.set(_cache_key(ref), (vehicle_id, route_id))
    return vehicle_id, route_id


def _params(ref) -> dict:
    return {
        "organization": ref.organization_id,
        "vehicle": ref.vehicle_id,
        "driver": ref.driver_id,
    }


def clear_route_cache() -> None:
    """Forget cached device → vehicle/route answers (tests; after a reassignment of vehicles)."""
    _routes.clear()


def vehicle_route(ref) -> tuple[int | None, int | None]:
    """(vehicle id, route id) of a device (sync ingest: Django views, GPX imports). A device
    with no vehicle and no route today has (None, ...): nothing moves on the map."""
    found = _cached(ref)
    if found is not None:
        return found
    if ref.vehicle_id is None and ref.driver_id is None:
        return _remember(ref, None)
    with connection.cursor() as cursor:
        cursor.execute(VEHICLE_ROUTE, _params(ref))
        return _remember(ref, cursor.fetchone())


async def vehicle_route_async(ref, *, pool) -> tuple[int | None, int | None]:
    """The async fast path's twin: `pool` is the caller's async connection pool getter, used
    only when the answer is not cached."""
    found = _cached(ref)
    if found is not None:
        return found
    if ref.vehicle_id is None and ref.driver_id is None:
        return _remember(ref, None)
    async with (await pool()).connection() as conn:
        cursor = await conn.execute(VEHICLE_ROUTE, _params(ref))
        return _remember(ref, await cursor.fetchone())


def vehicle_moved_event(ref, position: dict, *, vehicle_id: int, route_id: int | None):
    """The catalog event from the ingest's position (pings.plan_outcome)."""
    return vehicle_moved(
        organization_id=ref.organization_id,
        carrier_id=ref.carrier_id,
        vehicle_id=vehicle_id,
        route_id=route_id,
        device_id=ref.id,
        lat=position["lat"],
        lon=position["lon"],
        fix_time=position["fix_time"],
        speed_mps=position.get("speed_mps"),
        heading_deg=position.get("heading_deg"),
        battery_pct=position.get("battery_pct"),
    )
