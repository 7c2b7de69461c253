"""The one route summary: progress, lateness, next ETA and last fix of routes, computed in SQL
(three queries for any number of routes, plus one for the positions); and a stop as the console
shows it.

Read by the console snapshot (many routes), the console's route view and side panel, the
reassign answer and the `route.changed` payload (one route each). It lives with the domain,
not in a page module, so services and the API use it without importing the presentation layer.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, F, FloatField, Func, Q

from control_tower.times import iso
from tracking.models import (
    DONE_STOP_STATUSES,
    OPEN_STOP_STATUSES,
    DevicePosition,
    Route,
    Shipment,
    Stop,
    StopStatus,
)

OPEN = OPEN_STOP_STATUSES
DONE = DONE_STOP_STATUSES


class Latitude(Func):
    """ST_Y of a WGS 84 point."""

    function = "ST_Y"
    output_field = FloatField()


class Longitude(Func):
    """ST_X of a WGS 84 point."""

    function = "ST_X"
    output_field = FloatField()


def stop_is_late(stop: Stop) -> bool:
    """An open stop whose ETA (the latest, when known) is past its promised window end, or a
    finished stop that finished after it. `late_stop_filter` is the same rule in SQL."""
    if stop.window_end is None:
        return False
    if stop.status in OPEN:
        eta = stop.eta_latest or stop.eta
        return eta is not None and eta > stop.window_end
    finished = stop.actual_departure or stop.actual_arrival
    return finished is not None and finished > stop.window_end


def shipment_brief(shipment: Shipment) -> dict:
    return {
        "id": shipment.pk,
        "reference": shipment.reference,
        "barcode": shipment.barcode,
        "status": shipment.status,
    }


def stop_fields(stop: Stop, shipments: list[Shipment]) -> dict:
    """The stop as the console's route view shows it (CONSOLE_CONTRACT endpoint 2)."""
    recipients = list(dict.fromkeys(s.recipient_name for s in shipments if s.recipient_name))
    return {
        "id": stop.pk,
        "sequence": stop.sequence,
        "status": stop.status,
        "lat": stop.location.y,
        "lon": stop.location.x,
        "eta": iso(stop.eta),
        "eta_earliest": iso(stop.eta_earliest),
        "eta_latest": iso(stop.eta_latest),
        "window_start": iso(stop.window_start),
        "window_end": iso(stop.window_end),
        "late": stop_is_late(stop),
        "recipient": ", ".join(recipients),
        "address": stop.address,
        "shipments": [shipment_brief(s) for s in shipments],
        # What the recipients said through their tracking links (tracking/services/
        # customer_actions.py): the driver and the dispatcher act on these.
        "instructions": [s.delivery_instructions for s in shipments if s.delivery_instructions],
        "recipient_away_at": iso(stop.recipient_away_at),
    }


def late_stop_filter() -> Q:
    """`stop_is_late` as a filter on stops (cancelled stops are never late)."""
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
            late_stops=Count("pk", filter=late_stop_filter()),
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


def positions(positions_queryset, *, vehicle_ids=None, driver_ids=None) -> list[dict]:
    """Last positions (already narrowed to the reader) as rows, optionally of some vehicles or
    drivers only."""
    if vehicle_ids is not None:
        positions_queryset = positions_queryset.filter(
            Q(device__vehicle_id__in=vehicle_ids) | Q(device__driver_id__in=driver_ids or [])
        )
    return list(
        positions_queryset.values(
            "fix_time",
            "speed_mps",
            "heading_deg",
            "battery_pct",
            vehicle=F("device__vehicle_id"),
            driver=F("device__driver_id"),
        ).annotate(lat=Latitude("location"), lon=Longitude("location"))
    )


def newest_by(rows: list[dict], key: str) -> dict:
    newest: dict = {}
    for position in rows:
        owner = position[key]
        if owner is not None and (
            owner not in newest or position["fix_time"] > newest[owner]["fix_time"]
        ):
            newest[owner] = position
    return newest


def last_fix(row: dict, by_vehicle: dict, by_driver: dict) -> datetime | None:
    fixes = [
        hit["fix_time"]
        for hit in (by_vehicle.get(row["vehicle_id"]), by_driver.get(row["driver_id"]))
        if hit is not None
    ]
    return max(fixes) if fixes else None


def summary_of_row(row: dict, fix_time: datetime | None) -> dict:
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
        "last_fix_time": iso(fix_time),
    }


def route_summary(route: Route, *, with_stops: bool = False) -> dict:
    """One route's summary, as in the snapshot; `with_stops` adds its stops' ids and sequences
    (what the reassign action answers with for both routes)."""
    row = route_rows(Route.objects.filter(pk=route.pk))[0]
    found = positions(
        DevicePosition.objects.all(),
        vehicle_ids=[route.vehicle_id] if route.vehicle_id else [],
        driver_ids=[route.driver_id] if route.driver_id else [],
    )
    summary = summary_of_row(
        row, last_fix(row, newest_by(found, "vehicle"), newest_by(found, "driver"))
    )
    if with_stops:
        summary["stops"] = [
            {"id": pk, "sequence": sequence}
            for pk, sequence in Stop.objects.filter(route_id=route.pk)
            .order_by("sequence", "pk")
            .values_list("pk", "sequence")
        ]
    return summary
