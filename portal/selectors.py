"""Reads for the dispatcher console: the snapshot the map loads first, and one route when it is
opened. A fixed number of queries whatever the fleet size (no per-row queries); the actor's
carrier narrows everything for carrier users. The organization scope does the tenant filter."""

from __future__ import annotations

import math
from datetime import datetime

from django.db.models import Count, F, FloatField, Func, Prefetch, Q
from django.utils import timezone

from control_tower.numbers import finite_or_none
from control_tower.realtime import carrier_group, group_seq, organization_group
from control_tower.tenancy.actors import Actor
from portal.route_summary import DONE, OPEN, stop_is_late
from tracking.models import (
    DevicePosition,
    Hub,
    Route,
    RouteStatus,
    Shipment,
    Stop,
    StopStatus,
)

SNAPSHOT_VERSION = 1


class _Y(Func):
    function = "ST_Y"
    output_field = FloatField()


class _X(Func):
    function = "ST_X"
    output_field = FloatField()


def iso(value: datetime | None) -> str | None:
    # Database times come back aware in UTC: ISO 8601 with their offset, no conversion (this
    # runs ~6,000 times per snapshot).
    return None if value is None else value.isoformat()


def _coordinate(value: float | None) -> float | None:
    # Six decimals are ~0.1 m: enough for a map, and a smaller snapshot.
    return None if value is None else round(value, 6)


def events_group_of(actor: Actor) -> str:
    if actor.carrier_id is not None:
        return carrier_group(actor.organization.pk, actor.carrier_id)
    return organization_group(actor.organization.pk)


def console_routes(*, actor: Actor, today) -> object:
    """Today's routes (the organization's local date) and any still in progress."""
    routes = Route.objects.filter(Q(date=today) | Q(status=RouteStatus.IN_PROGRESS))
    if actor.carrier_id is not None:
        routes = routes.filter(carrier_id=actor.carrier_id)
    return routes


def _late_stop_filter() -> Q:
    """`stop_is_late` (portal/route_summary.py) as a filter on stops."""
    open_late = Q(status__in=OPEN) & (
        Q(eta_latest__gt=F("window_end")) | Q(eta_latest__isnull=True, eta__gt=F("window_end"))
    )
    finished = ~Q(status__in=[*OPEN, StopStatus.CANCELLED])
    finished_late = finished & (
        Q(actual_departure__gt=F("window_end"))
        | Q(actual_departure__isnull=True, actual_arrival__gt=F("window_end"))
    )
    return Q(window_end__isnull=False) & (open_late | finished_late)


def route_rows(routes) -> list[dict]:
    """Route summary fields (but `last_fix_time`) for many routes in three queries: the routes,
    their stops counted per route, the next open stop's ETA per route."""
    rows = list(
        routes.order_by("code", "pk").values(
            "id",
            "code",
            "status",
            "date",
            "carrier_id",
            "hub_id",
            "vehicle_id",
            "driver_id",
            "driver__name",
        )
    )
    route_ids = [row["id"] for row in rows]
    stops = Stop.objects.filter(route_id__in=route_ids)
    counts = {
        c["route_id"]: c
        for c in stops.values("route_id")
        .order_by()
        .annotate(
            stops_total=Count("pk", filter=~Q(status=StopStatus.CANCELLED)),
            stops_done=Count("pk", filter=Q(status__in=DONE)),
            late_stops=Count("pk", filter=_late_stop_filter()),
        )
    }
    next_eta = dict(
        stops.filter(status__in=OPEN)
        .order_by("route_id", "sequence", "pk")
        .distinct("route_id")
        .values_list("route_id", "eta")
    )
    empty = {"stops_total": 0, "stops_done": 0, "late_stops": 0}
    for row in rows:
        count = counts.get(row["id"], empty)
        row.update(
            stops_total=count["stops_total"],
            stops_done=count["stops_done"],
            late_stops=count["late_stops"],
            next_eta=next_eta.get(row["id"]),
        )
    return rows


def _positions(*, carrier_id: int | None, vehicle_ids=None, driver_ids=None) -> list[dict]:
    positions = DevicePosition.objects.all()
    if vehicle_ids is not None:
        positions = positions.filter(
            Q(device__vehicle_id__in=vehicle_ids) | Q(device__driver_id__in=driver_ids)
        )
    if carrier_id is not None:
        positions = positions.filter(device__carrier_id=carrier_id)
    return list(
        positions.values(
            "fix_time",
            "speed_mps",
            "heading_deg",
            "battery_pct",
            vehicle=F("device__vehicle_id"),
            driver=F("device__driver_id"),
        ).annotate(lat=_Y("location"), lon=_X("location"))
    )


def _newest_by(positions: list[dict], key: str) -> dict:
    newest: dict = {}
    for position in positions:
        owner = position[key]
        if owner is not None and (
            owner not in newest or position["fix_time"] > newest[owner]["fix_time"]
        ):
            newest[owner] = position
    return newest


def _route_summary(row: dict, last_fix: datetime | None) -> dict:
    return {
        "id": row["id"],
        "code": row["code"],
        "status": row["status"],
        "date": row["date"].isoformat(),
        "carrier": row["carrier_id"],
        "hub": row["hub_id"],
        "vehicle": row["vehicle_id"],
        "driver": row["driver_id"],
        "driver_name": row["driver__name"],
        "stops_total": row["stops_total"],
        "stops_done": row["stops_done"],
        "late_stops": row["late_stops"],
        "next_eta": iso(row["next_eta"]),
        "last_fix_time": iso(last_fix),
    }


def _last_fix(row: dict, by_vehicle: dict, by_driver: dict) -> datetime | None:
    fixes = [
        hit["fix_time"]
        for hit in (by_vehicle.get(row["vehicle_id"]), by_driver.get(row["driver_id"]))
        if hit is not None
    ]
    return max(fixes) if fixes else None


def _route_preference(row: dict, today) -> tuple:
    # The vehicle's route "now": in progress first, then today's planned, then the rest.
    return (
        row["status"] == RouteStatus.IN_PROGRESS,
        row["date"] == today and row["status"] == RouteStatus.PLANNED,
        row["date"],
    )


def _vehicle(vehicle: dict, route: dict | None, position: dict | None) -> dict:
    speed = position["speed_mps"] if position else None
    return {
        "id": vehicle["id"],
        "label": vehicle["plate"],
        "carrier": vehicle["carrier_id"],
        "route": route["id"] if route else None,
        "driver": route["driver_id"] if route else None,
        "driver_name": route["driver__name"] if route else None,
        "lat": _coordinate(position["lat"]) if position else None,
        "lon": _coordinate(position["lon"]) if position else None,
        "heading": finite_or_none(position["heading_deg"]) if position else None,
        "speed_kmh": finite_or_none(None if speed is None else speed * 3.6, digits=1),
        "battery": position["battery_pct"] if position else None,
        "fix_time": iso(position["fix_time"]) if position else None,
    }


def console_snapshot(*, actor: Actor, now: datetime | None = None) -> dict:
    """Everything the live map needs at load (the contract: docs/REALTIME.md). `seq` is read
    before any query, so every delta numbered after it may be applied on top."""
    from carriers.models import Carrier, Vehicle

    seq = group_seq(events_group_of(actor))
    now = now or timezone.now()
    organization = actor.organization
    today = now.astimezone(organization.zone).date()

    carriers = Carrier.objects.order_by("name")
    vehicles = Vehicle.objects.filter(is_active=True).order_by("plate")
    if actor.carrier_id is not None:
        carriers = carriers.filter(pk=actor.carrier_id)
        vehicles = vehicles.filter(carrier_id=actor.carrier_id)

    rows = route_rows(console_routes(actor=actor, today=today))
    positions = _positions(carrier_id=actor.carrier_id)
    by_vehicle = _newest_by(positions, "vehicle")
    by_driver = _newest_by(positions, "driver")

    route_of_vehicle: dict[int, dict] = {}
    for row in rows:
        vehicle_id = row["vehicle_id"]
        if vehicle_id is None:
            continue
        current = route_of_vehicle.get(vehicle_id)
        if current is None or _route_preference(row, today) > _route_preference(current, today):
            route_of_vehicle[vehicle_id] = row

    vehicle_list = []
    for vehicle in vehicles.values("id", "plate", "carrier_id"):
        route = route_of_vehicle.get(vehicle["id"])
        candidates = [by_vehicle.get(vehicle["id"])]
        if route is not None:  # a phone bound to the driver, not the vehicle
            candidates.append(by_driver.get(route["driver_id"]))
        found = [c for c in candidates if c is not None]
        position = max(found, key=lambda c: c["fix_time"]) if found else None
        vehicle_list.append(_vehicle(vehicle, route, position))

    return {
        "v": SNAPSHOT_VERSION,
        "seq": seq,
        "generated_at": iso(now),
        "organization": {
            "slug": organization.slug,
            "name": organization.name,
            "time_zone": organization.time_zone,
            "brand_color": organization.primary_color or None,
        },
        "carriers": list(carriers.values("id", "code", "name")),
        "hubs": [
            {
                "id": hub["id"],
                "code": hub["code"],
                "name": hub["name"],
                "lat": _coordinate(hub["lat"]),
                "lon": _coordinate(hub["lon"]),
            }
            for hub in Hub.objects.filter(is_active=True)
            .order_by("name")
            .values("id", "code", "name")
            .annotate(lat=_Y("location"), lon=_X("location"))
        ],
        "vehicles": vehicle_list,
        "routes": [_route_summary(row, _last_fix(row, by_vehicle, by_driver)) for row in rows],
    }


# ---------------------------------------------------------------------------------------------
# One route
# ---------------------------------------------------------------------------------------------


def console_route_or_none(*, actor: Actor, route_id: int) -> Route | None:
    """The route if the actor may see it (their organization by scope; their carrier)."""
    routes = Route.objects.filter(pk=route_id)
    if actor.carrier_id is not None:
        routes = routes.filter(carrier_id=actor.carrier_id)
    return routes.first()


def _nearest_vertex(path: list[list[float]], lat: float, lon: float) -> int:
    scale = math.cos(math.radians(lat))
    best, best_distance = 0, math.inf
    for index, (vertex_lat, vertex_lon) in enumerate(path):
        distance = (vertex_lat - lat) ** 2 + ((vertex_lon - lon) * scale) ** 2
        if distance < best_distance:
            best, best_distance = index, distance
    return best


def _stop(stop: Stop) -> dict:
    shipments = list(stop.shipments.all())
    return {
        "id": stop.pk,
        "sequence": stop.sequence,
        "status": stop.status,
        "lat": _coordinate(stop.location.y),
        "lon": _coordinate(stop.location.x),
        "eta": iso(stop.eta),
        "eta_earliest": iso(stop.eta_earliest),
        "eta_latest": iso(stop.eta_latest),
        "window_start": iso(stop.window_start),
        "window_end": iso(stop.window_end),
        "late": stop.status != StopStatus.CANCELLED and stop_is_late(stop),
        "recipient": shipments[0].recipient_name if shipments else "",
        "address": stop.address,
        "shipments": [
            {"id": s.pk, "reference": s.reference, "barcode": s.barcode, "status": s.status}
            for s in shipments
        ],
    }


def route_summary_for(route: Route) -> dict:
    """One route's summary, as in the snapshot (two queries): the `route.changed` payload."""
    row = route_rows(Route.objects.filter(pk=route.pk))[0]
    positions = _positions(
        carrier_id=None,
        vehicle_ids=[route.vehicle_id] if route.vehicle_id else [],
        driver_ids=[route.driver_id] if route.driver_id else [],
    )
    return _route_summary(
        row, _last_fix(row, _newest_by(positions, "vehicle"), _newest_by(positions, "driver"))
    )


def console_route(*, route: Route) -> dict:
    """The route's summary, planned path (as [lat, lon]), how far along it the driven part
    reaches (`done_until`: the path vertex nearest the last finished stop) and its stops."""
    stops = list(
        Stop.objects.filter(route_id=route.pk)
        .order_by("sequence", "pk")
        .prefetch_related(
            Prefetch(
                "shipments",
                queryset=Shipment.objects.order_by("pk").only(
                    "id", "reference", "barcode", "status", "recipient_name"
                ),
            )
        )
    )
    geometry = route.planned_geometry
    path = [[_coordinate(y), _coordinate(x)] for x, y in geometry.coords] if geometry else []
    finished = [s for s in stops if s.status in (StopStatus.COMPLETED, StopStatus.FAILED)]
    done_until = 0
    if path and finished:
        last = max(finished, key=lambda s: s.sequence)  # the driven part ends at it
        done_until = _nearest_vertex(path, last.location.y, last.location.x)
    return {
        **route_summary_for(route),
        "path": path,
        "done_until": done_until,
        "stops": [_stop(stop) for stop in stops],
    }
