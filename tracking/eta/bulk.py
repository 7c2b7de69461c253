"""Recomputing the ETAs of many routes at once: what the ping-triggered burst task
(`tracking.eta_burst`) and the sweep run.

The same estimate and the same store rule as `recompute.route_eta_update` (one route), with the
per-route round trips gone: per organization, one query for the routes, one for all their open
stops, one for the latest positions of their drivers' and vehicles' devices (plus one for the
last finished stop of the routes whose vehicle has no fresh fix), then one statement that locks,
writes, keeps revisions and returns the material moves for every stop of the batch, and one
INSERT of their `stop.eta_changed` events. At 1,000 routes the per-route path spent most of its
~10 ms per route (~85 ms under load) on those round trips and on Celery's per-task overhead.

Tenancy: every read and the store are filtered by the organization, and a batch that spans
organizations is split by organization first (each uses its own learned state and calibration).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, FloatField, Func, Q
from django.utils import timezone

from control_tower.tenancy.scope import organization_scope
from tracking.eta.engine import OPEN, StopEta, etas_from, with_parcels
from tracking.eta.legs import XY, legs_many
from tracking.eta.recompute import ETA_MATERIAL_SHARE, announce_moves
from tracking.models import ACTIVE_ROUTE_STATUSES, DevicePosition, Route, Stop

# The largest batch one store statement takes: ~2,000 stop rows locked and written at once,
# a few hundred milliseconds of work, so a concurrent stop event waits at most that long.
BATCH_MAX = 200

# recompute.STORE_ETAS for many routes, with the same materiality rule: the route of each stop
# travels with it (a stop must still belong to the route it was estimated for), rows are locked
# in id order (two batches, or a batch and a one-route recompute, never wait for each other in a
# circle), and the method is per row.
# Times travel as microseconds since the epoch (exact), and every column as one comma-separated
# string: psycopg adapting ~6,000 datetimes per batch cost more than the statement itself, and
# its list adaptation still checks every element against a regular expression.
STORE_MANY = """
WITH new AS (
    SELECT id, route, method,
        'epoch'::timestamptz + eta_us * interval '1 microsecond' AS eta,
        'epoch'::timestamptz + earliest_us * interval '1 microsecond' AS earliest,
        'epoch'::timestamptz + latest_us * interval '1 microsecond' AS latest
    FROM unnest(
        string_to_array(%(ids)s, ',')::bigint[], string_to_array(%(routes)s, ',')::bigint[],
        string_to_array(%(etas)s, ',')::bigint[], string_to_array(%(earliest)s, ',')::bigint[],
        string_to_array(%(latest)s, ',')::bigint[], string_to_array(%(methods)s, ',')
    ) AS new(id, route, eta_us, earliest_us, latest_us, method)
),
old AS (
    SELECT s.id, s.route_id, s.sequence, shown.eta AS shown_eta, shown.latest AS shown_latest
    FROM tracking_stop s JOIN new ON new.id = s.id AND new.route = s.route_id
    LEFT JOIN LATERAL (
        SELECT r.eta, r.latest FROM tracking_etarevision r
        WHERE r.organization_id = %(organization)s AND r.stop_id = s.id
        ORDER BY r.computed_at DESC, r.id DESC LIMIT 1
    ) shown ON true
    WHERE s.organization_id = %(organization)s AND s.status = ANY(%(open)s)
    ORDER BY s.id
    FOR UPDATE OF s
),
stored AS (
    UPDATE tracking_stop s
    SET eta = new.eta, eta_earliest = new.earliest, eta_latest = new.latest,
        eta_updated_at = %(now)s
    FROM new JOIN old ON old.id = new.id
    WHERE s.id = new.id AND s.organization_id = %(organization)s
    RETURNING s.id, old.route_id, old.sequence, new.eta, new.earliest, new.latest, new.method,
        old.shown_eta IS NULL
        OR abs(extract(epoch FROM old.shown_eta - new.eta)) > greatest(
            %(threshold)s, %(share)s * extract(epoch FROM new.eta - %(now)s))
        OR abs(extract(epoch FROM old.shown_latest - new.latest)) > greatest(
            %(threshold)s, %(share)s * extract(epoch FROM new.eta - %(now)s)) AS material
),
revisions AS (
    INSERT INTO tracking_etarevision
        (organization_id, stop_id, computed_at, eta, earliest, latest, method)
    SELECT %(organization)s, id, %(now)s, eta, earliest, latest, method
    FROM stored WHERE material
)
SELECT route_id, id, sequence, eta, earliest, latest FROM stored WHERE material
ORDER BY route_id, sequence
"""


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def _joined(values) -> str:
    return ",".join(map(str, values))


def _x(field: str) -> Func:
    return Func(F(field), function="ST_X", output_field=FloatField())


def _y(field: str) -> Func:
    return Func(F(field), function="ST_Y", output_field=FloatField())


class OpenStop(NamedTuple):
    """What the estimate reads of an open stop (a model instance per stop cost more than the
    estimate: ~10,000 per 1,000 routes)."""

    pk: int
    route_id: int
    status: str
    location: XY
    planned_service_s: int | None
    actual_arrival: datetime | None
    address: str
    parcels: int


def positions_of(organization_id: int, routes: list[Route], now: datetime) -> dict[int, XY]:
    """Where each route's vehicle is, as `engine._position` decides it for one route: the
    freshest fix of the driver's devices, else of the vehicle's, else the last finished stop,
    else the hub. Two queries for the whole batch at most."""
    fresh = now - timedelta(seconds=settings.ETA_POSITION_MAX_AGE_S)
    drivers = {r.driver_id for r in routes if r.driver_id}
    vehicles = {r.vehicle_id for r in routes if r.vehicle_id}
    by_driver: dict[int, tuple] = {}
    by_vehicle: dict[int, tuple] = {}
    if drivers or vehicles:
        fixes = DevicePosition.objects.filter(
            Q(device__driver_id__in=drivers) | Q(device__vehicle_id__in=vehicles),
            organization_id=organization_id,
            device__revoked_at__isnull=True,
            fix_time__gte=fresh,
        ).values_list(
            "device__driver_id", "device__vehicle_id", "fix_time", _x("location"), _y("location")
        )
        for driver_id, vehicle_id, fix_time, x, y in fixes:
            for index, key in ((by_driver, driver_id), (by_vehicle, vehicle_id)):
                if key is not None and (key not in index or index[key][0] < fix_time):
                    index[key] = (fix_time, XY(x, y))
    where: dict[int, XY] = {}
    for route in routes:
        best = (route.driver_id and by_driver.get(route.driver_id)) or (
            route.vehicle_id and by_vehicle.get(route.vehicle_id)
        )
        if best:
            where[route.pk] = best[1]
    missing = [r.pk for r in routes if r.pk not in where]
    if missing:
        last_stops = {
            route_id: XY(x, y) if x is not None else None
            for route_id, x, y in Stop.objects.filter(
                organization_id=organization_id, route_id__in=missing
            )
            .exclude(status__in=OPEN)
            .exclude(actual_departure__isnull=True)
            .order_by("route_id", "-actual_departure")
            .distinct("route_id")
            .values_list("route_id", _x("location"), _y("location"))
        }
        for route in routes:
            if route.pk not in where:
                hub = route.hub.location
                where[route.pk] = last_stops.get(route.pk) or XY(hub.x, hub.y)
    return where


def routes_etas(
    organization_id: int, routes: list[Route], now: datetime
) -> dict[int, list[StopEta]]:
    """Fresh ETAs of the open stops of each of an organization's routes (routes without open
    stops are left out)."""
    stops_by_route: dict[int, list[OpenStop]] = defaultdict(list)
    rows = (
        with_parcels(
            Stop.objects.filter(
                organization_id=organization_id,
                route_id__in=[r.pk for r in routes],
                status__in=OPEN,
                location__isnull=False,
            )
        )
        .order_by("route_id", "sequence")
        .values_list(
            "id",
            "route_id",
            "status",
            _x("location"),
            _y("location"),
            "planned_service_s",
            "actual_arrival",
            "address",
            "parcels",
        )
    )
    for pk, route_id, status, x, y, service_s, arrival, address, parcels in rows:
        stops_by_route[route_id].append(
            OpenStop(pk, route_id, status, XY(x, y), service_s, arrival, address, parcels)
        )
    with_stops = [r for r in routes if stops_by_route[r.pk]]
    if not with_stops:
        return {}
    where = positions_of(organization_id, with_stops, now)
    legs = legs_many(
        [[where[r.pk], *(s.location for s in stops_by_route[r.pk])] for r in with_stops],
        from_vehicle=True,
    )
    return {
        r.pk: etas_from(r, stops_by_route[r.pk], route_legs, now, where[r.pk])
        for r, route_legs in zip(with_stops, legs, strict=True)
    }


def _store(organization_id: int, routes: dict[int, Route], etas: dict[int, list[StopEta]], now):
    rows = [(route_id, e) for route_id, route_etas in etas.items() for e in route_etas]
    params = {
        "ids": _joined(e.stop_id for _r, e in rows),
        "routes": _joined(route_id for route_id, _e in rows),
        "etas": _joined(_us(e.eta) for _r, e in rows),
        "earliest": _joined(_us(e.earliest) for _r, e in rows),
        "latest": _joined(_us(e.latest) for _r, e in rows),
        "methods": _joined(e.method for _r, e in rows),  # names without commas (engine.py)
        "organization": organization_id,
        "open": list(OPEN),
        "now": now,
        "threshold": settings.ETA_MATERIAL_CHANGE_S,
        "share": ETA_MATERIAL_SHARE,
    }
    # Derived data, redone on the next ping or sweep: as for one route, its commit need not
    # wait for the WAL, and only in a transaction of our own.
    relaxed = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if relaxed:
            cursor.execute("SET LOCAL synchronous_commit TO off")
        cursor.execute(STORE_MANY, params)
        moved = cursor.fetchall()
        # In the store's transaction: the outbox rows commit (or vanish) with the ETAs.
        announce_moves((routes[route_id], *rest) for route_id, *rest in moved)
    counts: dict[int, int] = dict.fromkeys(routes, 0)
    for route_id, *_rest in moved:
        counts[route_id] += 1
    return counts


def routes_eta_update(routes: Iterable[Route], *, now: datetime | None = None) -> dict[int, int]:
    """`route_eta_update` for many routes: {route id: how many stops moved materially} for every
    active route given (0 for one with nothing to store). Split by organization, then per
    organization one read of each kind and one store statement."""
    now = now or timezone.now()
    by_organization: dict[int, list[Route]] = defaultdict(list)
    for route in routes:
        if route.status in ACTIVE_ROUTE_STATUSES:
            by_organization[route.organization_id].append(route)
    moved: dict[int, int] = {}
    for organization_id, mine in by_organization.items():
        # Each organization in its own scope as well as filtered by it explicitly.
        with organization_scope(mine[0].organization):
            etas = routes_etas(organization_id, mine, now)
            if etas:
                moved.update(_store(organization_id, {r.pk: r for r in mine}, etas, now))
            else:
                moved.update(dict.fromkeys((r.pk for r in mine), 0))
    return moved


def active_routes(organization_id: int, route_ids: list[int]) -> list[Route]:
    """The routes among `route_ids` of this organization, as the bulk recompute reads them."""
    return list(
        Route.objects.filter(organization_id=organization_id, pk__in=route_ids).select_related(
            "hub", "organization"
        )
    )
