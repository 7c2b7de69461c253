"""Planning a hub's day with a real vehicle-routing solver (VROOM, through pyvroom).

Input: a hub, a service day, vehicles with their driver, capacity (parcels) and shift, and the
shipments to deliver (by default: the hub's shipments not yet on an open route, with a geocoded
address). Shipments at the same address are one stop. Travel times come from
`tracking/roads/routing.py` (the road network when loaded). VROOM minimizes total travel time
subject to capacities, promised windows and shifts; what it cannot fit is reported as
unassigned with the likely reason. The plan is stored through `route_plan_create` (or only
returned, `dry_run`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef

from control_tower.errors import DomainError
from control_tower.tenancy.actors import Actor
from tracking.models import (
    OPEN_STOP_STATUSES,
    Hub,
    Route,
    Shipment,
    ShipmentStatus,
    StopShipment,
)
from tracking.roads.routing import route_path, travel_matrix
from tracking.services.routes import route_plan_create

# VROOM search effort, 0-5. Measured on 200 stops / 10 vans (bench/planning.py): level 3 solves
# in ~3 s for 21.5 h of driving, level 5 in ~7 s for 21.3 h.
EXPLORATION_LEVEL = 3
PLANNABLE_STATUSES = (ShipmentStatus.INFO_RECEIVED, ShipmentStatus.AT_HUB)


class Infeasible(DomainError):
    code = "infeasible"
    status_code = 422


@dataclass(frozen=True)
class VehicleShift:
    vehicle: object  # carriers.models.Vehicle
    driver: object  # carriers.models.Driver
    shift_start: datetime
    shift_end: datetime


@dataclass
class PlanResult:
    routes: list = field(default_factory=list)  # Route objects, or specs when dry_run
    unassigned: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)


def _invalid(field_name: str, message: str) -> DomainError:
    return DomainError(message, fields={field_name: [message]}, code="validation_error")


def default_shipments(hub: Hub) -> list[Shipment]:
    on_open_route = StopShipment.objects.filter(
        shipment=OuterRef("pk"), stop__status__in=OPEN_STOP_STATUSES
    )
    return list(
        Shipment.objects.filter(hub=hub, status__in=PLANNABLE_STATUSES, location__isnull=False)
        .exclude(Exists(on_open_route))
        .order_by("id")
    )


def _check(vehicles: list[VehicleShift], shipments: list[Shipment]) -> None:
    if not vehicles:
        raise _invalid("vehicles", "Give at least one vehicle with its driver and shift.")
    for index, shift in enumerate(vehicles):
        if shift.shift_end <= shift.shift_start:
            raise _invalid("vehicles", f"Vehicle {index}: the shift ends before it starts.")
        if shift.driver.carrier_id != shift.vehicle.carrier_id:
            raise _invalid(
                "vehicles", f"Vehicle {index}: driver and vehicle are of different carriers."
            )
    if not shipments:
        raise _invalid(
            "shipments",
            "Nothing to plan: no shipment at this hub waits for a route (with a geocoded address).",
        )
    missing = [s.reference for s in shipments if s.location is None]
    if missing:
        raise _invalid("shipments", f"Without a geocoded address: {', '.join(missing[:10])}.")


def plan_routes(
    *,
    actor: Actor,
    hub: Hub,
    date: Date,
    vehicles: list[VehicleShift],
    shipments: list[Shipment] | None = None,
    service_s: int = 180,
    per_parcel_s: int = 20,
    max_stops_per_route: int | None = None,
    dry_run: bool = False,
) -> PlanResult:
    import vroom

    shipments = default_shipments(hub) if shipments is None else shipments
    _check(vehicles, shipments)
    started = time.perf_counter()
    # One stop per address.
    stops: dict[tuple[float, float], list[Shipment]] = {}
    for shipment in shipments:
        stops.setdefault((shipment.location.x, shipment.location.y), []).append(shipment)
    groups = list(stops.values())
    points = [hub.location] + [group[0].location for group in groups]
    matrix = travel_matrix(points)
    epoch = min(shift.shift_start for shift in vehicles)

    def seconds(moment: datetime) -> int:
        return max(0, int((moment - epoch).total_seconds()))

    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=matrix.durations_s)
    problem.set_distances_matrix(profile="car", matrix_input=matrix.distances_m)
    problem.add_vehicle(
        [
            vroom.Vehicle(
                index,
                start=0,
                end=0,
                capacity=[shift.vehicle.capacity_parcels],
                time_window=vroom.TimeWindow(seconds(shift.shift_start), seconds(shift.shift_end)),
                **({"max_tasks": max_stops_per_route} if max_stops_per_route else {}),
            )
            for index, shift in enumerate(vehicles)
        ]
    )
    latest_end = max(seconds(shift.shift_end) for shift in vehicles)
    for index, group in enumerate(groups, start=1):
        parcels = sum(s.parcel_count for s in group)
        windows = _windows(group, seconds, latest_end)
        problem.add_job(
            vroom.Job(
                index,
                location=index,
                delivery=[parcels],
                default_service=service_s + per_parcel_s * (parcels - 1),
                time_windows=[vroom.TimeWindow(a, b) for a, b in windows],
            )
        )
    solve_started = time.perf_counter()
    solution = problem.solve(exploration_level=EXPLORATION_LEVEL, nb_threads=2).to_dict()
    solve_ms = (time.perf_counter() - solve_started) * 1000

    result = PlanResult()
    max_capacity = max(shift.vehicle.capacity_parcels for shift in vehicles)
    for job in solution.get("unassigned", []):
        group = groups[job["id"] - 1]
        parcels = sum(s.parcel_count for s in group)
        reason = (
            f"{parcels} parcels exceed the largest vehicle ({max_capacity})"
            if parcels > max_capacity
            else "no vehicle can reach it within its promised window and a shift"
            if all(b <= a for a, b in _windows(group, seconds, latest_end))
            or not _reachable(group, vehicles, seconds)
            else "no room left in any route (capacity or shift time)"
        )
        result.unassigned.extend(
            {"shipment": s.pk, "reference": s.reference, "reason": reason} for s in group
        )
    if not solution.get("routes"):
        raise Infeasible(
            "No shipment fits any vehicle: "
            + (result.unassigned[0]["reason"] if result.unassigned else "nothing to do")
            + ".",
            fields={"shipments": [u["reason"] for u in result.unassigned[:5]]},
        )
    specs, met, total_stops = [], 0, 0
    codes = _free_codes(hub, date, len(solution["routes"]))
    for number, route in enumerate(solution["routes"]):
        shift = vehicles[route["vehicle"]]
        steps = [step for step in route["steps"] if step["type"] == "job"]
        times = _earliest_schedule(
            steps, matrix.durations_s, groups, seconds, seconds(shift.shift_start)
        )
        stop_specs = []
        for step, at in zip(steps, times["arrivals"], strict=True):
            group = groups[step["job"] - 1]
            arrival = epoch + timedelta(seconds=at)
            in_window = all(
                (s.promised_window_start is None or arrival >= s.promised_window_start)
                and (s.promised_window_end is None or arrival <= s.promised_window_end)
                for s in group
            )
            met += in_window
            stop_specs.append(
                {
                    "location": group[0].location,
                    "address": f"{group[0].address_line1}, {group[0].city}",
                    "window_start": max(
                        (s.promised_window_start for s in group if s.promised_window_start),
                        default=None,
                    ),
                    "window_end": min(
                        (s.promised_window_end for s in group if s.promised_window_end),
                        default=None,
                    ),
                    "planned_arrival": arrival,
                    "planned_service_s": step["service"],
                    "shipments": group,
                }
            )
        total_stops += len(stop_specs)
        start = epoch + timedelta(seconds=times["start"])
        end = epoch + timedelta(seconds=times["end"])
        path = route_path([hub.location, *(s["location"] for s in stop_specs), hub.location])
        specs.append(
            {
                "code": codes[number],
                "hub": hub,
                "carrier": shift.vehicle.carrier,
                "driver": shift.driver,
                "vehicle": shift.vehicle,
                "planned_start": start,
                "planned_end": end,
                "planned_geometry": path.geometry,
                "planned_distance_m": int(route.get("distance", path.length_m)),
                "planned_duration_s": int((end - start).total_seconds()),
                "stops": stop_specs,
            }
        )
    summary = solution["summary"]
    result.totals = {
        "routes": len(specs),
        "stops": total_stops,
        "shipments": sum(len(s["shipments"]) for spec in specs for s in spec["stops"]),
        "unassigned_shipments": len(result.unassigned),
        "distance_m": int(summary.get("distance", 0)),
        "drive_s": int(summary["duration"]),
        "service_s": int(summary["service"]),
        "windows_met": met,
        "windows_met_pct": round(100 * met / total_stops, 1) if total_stops else 100.0,
        "computing_ms": round((time.perf_counter() - started) * 1000),
        "solver_ms": round(solve_ms),
        "matrix": matrix.source,
    }
    if dry_run:
        result.routes = specs
    else:
        result.routes = route_plan_create(actor=actor, date=date, routes=specs)
    return result


def _earliest_schedule(steps, durations, groups, seconds, shift_start: int) -> dict:
    """VROOM minimizes driving, not the clock, and happily leaves the hub late. Dispatchers want
    vans out early: keep its stop order, leave when the shift (or the first window, less the
    drive) allows, and wait only when early. Arrivals are never later than VROOM's, so every
    window it met is still met."""
    if not steps:
        return {"start": shift_start, "arrivals": [], "end": shift_start}

    def window_start(step) -> int:
        starts = [
            seconds(s.promised_window_start)
            for s in groups[step["job"] - 1]
            if s.promised_window_start
        ]
        return max(starts, default=0)

    first = steps[0]["location_index"]
    start = max(shift_start, window_start(steps[0]) - durations[0][first])
    t, here, arrivals = start, 0, []
    for step in steps:
        t = max(t + durations[here][step["location_index"]], window_start(step))
        arrivals.append(t)
        t += step["service"]
        here = step["location_index"]
    return {"start": start, "arrivals": arrivals, "end": t + durations[here][0]}


def _windows(group, seconds, latest_end) -> list[tuple[int, int]]:
    """The window every shipment of a stop allows (the intersection), in solver seconds."""
    starts = [seconds(s.promised_window_start) for s in group if s.promised_window_start]
    ends = [seconds(s.promised_window_end) for s in group if s.promised_window_end]
    return [(max(starts, default=0), min(ends, default=latest_end))]


def _reachable(group, vehicles, seconds) -> bool:
    ((a, b),) = _windows(group, seconds, max(seconds(v.shift_end) for v in vehicles))
    return any(seconds(v.shift_start) <= b and a <= seconds(v.shift_end) for v in vehicles)


def _free_codes(hub: Hub, date: Date, count: int) -> list[str]:
    taken = set(Route.objects.filter(date=date).values_list("code", flat=True))
    codes, number = [], 1
    while len(codes) < count:
        code = f"{hub.code}-P{number:02d}"
        if code not in taken:
            codes.append(code)
        number += 1
    return codes
