"""Reads for the dispatcher console: the snapshot the map loads first, and one route when it is
opened. A fixed number of queries whatever the fleet size (no per-row queries); the actor's
carrier narrows everything for carrier users. The organization scope does the tenant filter."""

from __future__ import annotations

import json
import math
from datetime import datetime

from django.db.models import Prefetch, Q
from django.utils import timezone

from control_tower.realtime import carrier_group, group_seq, organization_group
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from portal.snapshot_sql import snapshot_lists
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
from tracking.route_summary import Latitude, Longitude, iso, route_summary, stop_is_late

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


def _snapshot_head(*, actor: Actor, now: datetime) -> dict:
    """The snapshot but its vehicles and routes. `seq` is read before any query, so every delta
    numbered after it may be applied on top."""
    from carriers.models import Carrier

    seq = group_seq(events_group_of(actor))
    organization = actor.organization
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
        "carriers": list(visible_to(actor, Carrier).order_by("name").values("id", "code", "name")),
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
    }


def console_snapshot_json(*, actor: Actor, now: datetime | None = None) -> bytes:
    """Everything the live map needs at load (the contract: docs/REALTIME.md), as the response
    body: the vehicles and routes are written by PostgreSQL (portal/snapshot_sql.py), the rest
    here. Three queries whatever the fleet size."""
    from carriers.models import Vehicle

    now = now or timezone.now()
    head = _snapshot_head(actor=actor, now=now)
    vehicles_json, routes_json = snapshot_lists(
        routes=console_routes(actor=actor, today=now.astimezone(actor.organization.zone).date()),
        positions=visible_to(actor, DevicePosition),
        vehicles=visible_to(actor, Vehicle).filter(is_active=True),
        today=now.astimezone(actor.organization.zone).date(),
    )
    text = json.dumps(head, separators=(",", ":"), ensure_ascii=False)
    return f'{text[:-1]},"vehicles":{vehicles_json},"routes":{routes_json}}}'.encode()


def console_snapshot(*, actor: Actor, now: datetime | None = None) -> dict:
    """`console_snapshot_json` as a dict (for callers that read it rather than send it)."""
    return json.loads(console_snapshot_json(actor=actor, now=now))


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
