"""One route's console summary (the snapshot's route fields) plus its stops' ids and sequences:
what the reassign action answers with for both routes. Two queries per route."""

from __future__ import annotations

from django.db.models import Max

from control_tower.times import iso
from tracking.models import (
    DONE_STOP_STATUSES,
    OPEN_STOP_STATUSES,
    DevicePosition,
    Route,
    Stop,
    StopStatus,
)

OPEN = OPEN_STOP_STATUSES
DONE = DONE_STOP_STATUSES


def stop_is_late(stop: Stop) -> bool:
    """An open stop whose ETA (the latest, when known) is past its promised window end, or a
    finished stop that finished after it."""
    if stop.window_end is None:
        return False
    if stop.status in OPEN:
        eta = stop.eta_latest or stop.eta
        return eta is not None and eta > stop.window_end
    finished = stop.actual_departure or stop.actual_arrival
    return finished is not None and finished > stop.window_end


def route_summary(route: Route, *, with_stops: bool = True) -> dict:
    stops = list(
        Stop.objects.filter(route_id=route.pk)
        .order_by("sequence", "pk")
        .only(
            "id",
            "sequence",
            "status",
            "eta",
            "eta_latest",
            "window_end",
            "actual_arrival",
            "actual_departure",
        )
    )
    counted = [s for s in stops if s.status != StopStatus.CANCELLED]
    next_open = next((s for s in stops if s.status in OPEN), None)
    last_fix = None
    if route.vehicle_id or route.driver_id:
        from django.db.models import Q

        who = Q()
        if route.vehicle_id:
            who |= Q(device__vehicle_id=route.vehicle_id)
        if route.driver_id:
            who |= Q(device__driver_id=route.driver_id)
        last_fix = DevicePosition.objects.filter(who).aggregate(at=Max("fix_time"))["at"]
    summary = {
        "id": route.pk,
        "code": route.code,
        "status": route.status,
        "date": route.date.isoformat(),
        "carrier": route.carrier_id,
        "hub": route.hub_id,
        "vehicle": route.vehicle_id,
        "driver": route.driver_id,
        "stops_total": len(counted),
        "stops_done": sum(s.status in DONE for s in stops),
        "late_stops": sum(stop_is_late(s) for s in counted),
        "next_eta": iso(next_open.eta) if next_open else None,
        "last_fix_time": iso(last_fix),
    }
    if with_stops:
        summary["stops"] = [{"id": s.pk, "sequence": s.sequence} for s in stops]
    return summary
