"""Reads for the dispatcher console: the snapshot the map loads first, and one route when it is
opened. A fixed number of queries whatever the fleet size (no per-row queries); the actor's
carrier narrows everything for carrier users. The organization scope does the tenant filter."""

from __future__ import annotations

import math
from datetime import datetime

from django.db.models import Prefetch, Q
from django.utils import timezone

from control_tower.numbers import finite_or_none
from control_tower.realtime import carrier_group, group_seq, organization_group
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from tracking.models import (
    ATTEMPTED_STOP_STATUSES,
    DevicePosition,
    Hub,
    Route,
    RouteStatus,
    Shipment,
    Stop,
    StopStatus,
)
from tracking.route_summary import (
    Latitude,
    Longitude,
    iso,
    last_fix,
    newest_by,
    positions,
    route_rows,
    route_summary,
    stop_is_late,
    summary_of_row,
)

# The one route summary lives in tracking/route_summary.py; kept here under its old name for
# the callers that read it from the console's selectors.
route_summary_for = route_summary

SNAPSHOT_VERSION = 1


def _coordinate(value: float | None) -> float | None:
    # Six decimals are ~0.1 m: enough for a map, and a smaller snapshot.
    return None if value is None else round(value, 6)


def events_group_of(actor: Actor) -> str:
    if actor.carrier_id is not None:
        return carrier_group(actor.organization.pk, actor.carrier_id)
    return organization_group(actor.organization.pk)


def console_routes(*, actor: Actor, today) -> object:
    """Today's routes (the organization's local date) and any still in progress."""
    return visible_to(actor, Route).filter(Q(date=today) | Q(status=RouteStatus.IN_PROGRESS))


def _positions(actor: Actor) -> list[dict]:
    return positions(visible_to(actor, DevicePosition))


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

    carriers = visible_to(actor, Carrier).order_by("name")
    vehicles = visible_to(actor, Vehicle).filter(is_active=True).order_by("plate")

    rows = route_rows(console_routes(actor=actor, today=today))
    found = _positions(actor)
    by_vehicle = newest_by(found, "vehicle")
    by_driver = newest_by(found, "driver")

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
            for hub in visible_to(actor, Hub)
            .filter(is_active=True)
            .order_by("name")
            .values("id", "code", "name")
            .annotate(lat=Latitude("location"), lon=Longitude("location"))
        ],
        "vehicles": vehicle_list,
        "routes": [summary_of_row(row, last_fix(row, by_vehicle, by_driver)) for row in rows],
    }


# ---------------------------------------------------------------------------------------------
# One route
# ---------------------------------------------------------------------------------------------


def console_route_or_none(*, actor: Actor, route_id: int) -> Route | None:
    """The route if the actor may see it (their organization by scope; their carrier)."""
    return visible_to(actor, Route).filter(pk=route_id).first()


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
        # The recipient said "I'm not home" (tracking link): the console flags the stop.
        "recipient_away_at": iso(stop.recipient_away_at),
    }


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
    finished = [s for s in stops if s.status in ATTEMPTED_STOP_STATUSES]
    done_until = 0
    if path and finished:
        last = max(finished, key=lambda s: s.sequence)  # the driven part ends at it
        done_until = _nearest_vertex(path, last.location.y, last.location.x)
    return {
        **route_summary(route),
        "path": path,
        "done_until": done_until,
        "stops": [_stop(stop) for stop in stops],
    }
