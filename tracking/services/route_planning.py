"""Planning a hub's day with a real vehicle-routing solver (VROOM, through pyvroom).

Input: a hub, a service day, vehicles with their driver, capacity (parcels) and shift, and the
shipments to deliver (by default: the hub's shipments not yet on an open route, with a geocoded
address). Shipments at the same address are one stop. Travel times come from
`tracking/roads/routing.py` (the road network when loaded). VROOM minimizes total travel time
subject to capacities, promised windows and shifts, with the service and travel times of
`tracking/services/planning_times.py` (learned from the organization's history once it has a
trained ETA model, else the defaults); what it cannot fit is reported as unassigned with the
likely reason. The plan is stored through `route_plan_create` (or only
returned, `dry_run`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Exists, OuterRef

from carriers.models import Driver, Vehicle
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from tracking.errors import Infeasible, InvalidInput, ItemErrors
from tracking.models import Hub, Route, Shipment, ShipmentStatus, StopShipment
from tracking.roads.routing import route_path, travel_matrix
from tracking.services.planning_times import PlanningTimes, planning_times, timed_matrix
from tracking.services.route_improvement import (
    JobSpec,
    VehicleSpec,
    improvement_budget_s,
    plan_improve,
)
from tracking.services.routes import route_plan_create
from tracking.services.shipments import FINAL_STATUSES
from tracking.services.stop_shipments import (
    OPEN_ROUTE_STATUSES,
    OPEN_STOP_STATUSES,
    shipments_on_open_routes,
)

# VROOM search effort, 0-5. Measured on 200 stops / 10 vans (bench/planning.py): level 3 solves
# in ~3 s for 21.5 h of driving, level 5 in ~7 s for 21.3 h, both a few % longer than PyVRP's.
# VROOM now only gives the first plan, which PyVRP improves (route_improvement.py): the
# quickest level is enough (bench/planning_compare.py).
EXPLORATION_LEVEL = 0
VROOM_TIMEOUT = timedelta(seconds=0.1)
MIN_PLANNED_WINDOW_S = 600  # a margin never plans a stop's window shorter than this
PLANNABLE_STATUSES = (ShipmentStatus.INFO_RECEIVED, ShipmentStatus.AT_HUB)

__all__ = ["Infeasible", "PlanResult", "VehicleShift", "plan_routes", "plan_routes_from_ids"]


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


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput.on(field_name, message)


def default_shipments(hub: Hub, actor: Actor | None = None) -> list[Shipment]:
    # A carrier-bound actor plans only its own carrier's shipments.
    on_open_route = StopShipment.objects.filter(
        shipment=OuterRef("pk"),
        stop__status__in=OPEN_STOP_STATUSES,
        stop__route__status__in=OPEN_ROUTE_STATUSES,
    )
    return list(
        visible_to(actor, Shipment)
        .filter(hub=hub, status__in=PLANNABLE_STATUSES, location__isnull=False)
        .exclude(Exists(on_open_route))
        .order_by("id")
    )


@transaction.atomic
def plan_routes_from_ids(
    *,
    actor: Actor,
    hub_id: int,
    date: Date,
    vehicles: list[dict],
    shipment_ids: list[int] | None = None,
    service_s: int = 180,
    dry_run: bool = False,
) -> PlanResult:
    """`plan_routes` for a request that names things by id: `vehicles` are
    `{"vehicle", "driver", "shift_start", "shift_end"}`. Ids another organization owns are
    unknown (the queries are scoped), and so are another carrier's to a carrier-bound actor;
    every unknown id is refused by name."""
    hub, shifts = _resolve_hub_and_fleet(actor, hub_id, vehicles)
    shipments = None if shipment_ids is None else _resolve_shipments(actor, shipment_ids)
    return plan_routes(
        actor=actor,
        hub=hub,
        date=date,
        vehicles=shifts,
        shipments=shipments,
        service_s=service_s,
        dry_run=dry_run,
    )


def _resolve_hub_and_fleet(
    actor: Actor, hub_id: int, vehicles: list[dict]
) -> tuple[Hub, list[VehicleShift]]:
    errors = ItemErrors("vehicles")
    hub = visible_to(actor, Hub).filter(pk=hub_id).first()
    found_vehicles = visible_to(actor, Vehicle).in_bulk({v["vehicle"] for v in vehicles})
    found_drivers = visible_to(actor, Driver).in_bulk({v["driver"] for v in vehicles})
    shifts = []
    for index, item in enumerate(vehicles):
        vehicle, driver = found_vehicles.get(item["vehicle"]), found_drivers.get(item["driver"])
        if vehicle is None:
            errors.add(index, "vehicle", f'Invalid pk "{item["vehicle"]}".')
        if driver is None:
            errors.add(index, "driver", f'Invalid pk "{item["driver"]}".')
        if vehicle and driver:
            shifts.append(VehicleShift(vehicle, driver, item["shift_start"], item["shift_end"]))
    if hub is None:
        raise _invalid("hub", f'Invalid pk "{hub_id}".')
    errors.raise_if_any()
    return hub, shifts


def _resolve_shipments(actor: Actor, shipment_ids: list[int]) -> list[Shipment]:
    found = visible_to(actor, Shipment).in_bulk(shipment_ids)
    unknown = [pk for pk in shipment_ids if pk not in found]
    if unknown:
        raise _invalid("shipments", f"Invalid pk(s): {', '.join(map(str, unknown[:20]))}.")
    return [found[pk] for pk in shipment_ids]


def _check(actor: Actor, hub: Hub, vehicles: list[VehicleShift], shipments: list[Shipment]) -> None:
    organization_id = actor.organization.pk
    if hub.organization_id != organization_id:
        raise _invalid("hub", f'Invalid pk "{hub.pk}".')
    if not vehicles:
        raise _invalid("vehicles", "Give at least one vehicle with its driver and shift.")
    for index, shift in enumerate(vehicles):
        if {shift.vehicle.organization_id, shift.driver.organization_id} != {organization_id}:
            raise _invalid("vehicles", f"Vehicle {index}: unknown vehicle or driver.")
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
    _check_shipments(organization_id, shipments)


def _check_shipments(organization_id: int, shipments: list[Shipment]) -> None:
    """The shipments a plan may take: this organization's, not final, on no open route (a list
    given by the caller is checked like the default one), once each, geocoded."""
    foreign = [str(s.pk) for s in shipments if s.organization_id != organization_id]
    if foreign:
        raise _invalid("shipments", f"Invalid pk(s): {', '.join(foreign[:20])}.")
    problems = [
        f"Shipment {s.reference} is {s.status}." for s in shipments if s.status in FINAL_STATUSES
    ]
    on_open = shipments_on_open_routes(s.pk for s in shipments)
    problems += [
        f"Shipment {s.reference} is already on an open route ({on_open[s.pk]})."
        for s in shipments
        if s.pk in on_open
    ]
    if len({s.pk for s in shipments}) != len(shipments):
        problems.append("A shipment is listed twice.")
    if problems:
        raise InvalidInput(" ".join(problems[:10]), fields={"shipments": problems[:20]})
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
    times: PlanningTimes | None = None,
) -> PlanResult:
    """Plan `hub`'s day on `vehicles`: solve, describe what could not fit, and store the routes
    (unless `dry_run`). Raises `InvalidInput` for input that breaks a rule (see `_check`) and
    `Infeasible` when no shipment fits any vehicle. `times`: the service and travel times to
    plan with; by default the organization's learned ones when it has a trained model, else
    `DefaultTimes(service_s, per_parcel_s)`. The stops' planned arrivals and service times
    follow them."""
    shipments = default_shipments(hub, actor) if shipments is None else shipments
    _check(actor, hub, vehicles, shipments)
    started = time.perf_counter()
    times = times or planning_times(
        actor.organization, service_s, per_parcel_s, weekday=date.weekday()
    )
    groups = _stops_by_address(shipments)
    clock = _SolverClock(min(shift.shift_start for shift in vehicles))
    latest_end = max(clock.seconds(shift.shift_end) for shift in vehicles)
    spans = _local_spans(groups, clock, latest_end, ZoneInfo(actor.organization.time_zone))
    matrix = timed_matrix(
        travel_matrix([hub.location] + [group[0].location for group in groups]), times, spans
    )
    services = _service_times(groups, times, spans)
    solve_started = time.perf_counter()
    solution = _solve(
        groups,
        vehicles,
        matrix,
        clock,
        latest_end,
        services,
        max_stops_per_route,
        margin_s=times.late_margin_s,
    )
    solve_ms = (time.perf_counter() - solve_started) * 1000

    result = PlanResult()
    result.unassigned = _unassigned(solution, groups, vehicles, clock.seconds, latest_end)
    if not solution.get("routes"):
        raise Infeasible(
            "No shipment fits any vehicle: "
            + (result.unassigned[0]["reason"] if result.unassigned else "nothing to do")
            + ".",
            fields={"shipments": [u["reason"] for u in result.unassigned[:5]]},
        )
    specs, met = _route_specs(solution, hub, date, vehicles, groups, matrix, clock)
    total_stops = sum(len(spec["stops"]) for spec in specs)
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
        "times": times.label,
    }
    if dry_run:
        result.routes = specs
    else:
        result.routes = route_plan_create(actor=actor, date=date, routes=specs)
    return result


class _SolverClock:
    """VROOM works in whole seconds from an epoch: the earliest shift start."""

    def __init__(self, epoch: datetime):
        self.epoch = epoch

    def seconds(self, moment: datetime) -> int:
        return max(0, int((moment - self.epoch).total_seconds()))

    def at(self, seconds: int) -> datetime:
        return self.epoch + timedelta(seconds=seconds)


def _local_spans(groups, clock, latest_end: int, zone) -> list[tuple[float, float]]:
    """Per matrix index, the local hours (from, to) it is visited in: the hub over the
    shifts, each stop over its window within them (what the times are taken at)."""

    def hours(begin: int, end: int) -> tuple[float, float]:
        local = clock.at(begin).astimezone(zone)
        start = local.hour + local.minute / 60
        return start, start + max(0, end - begin) / 3600

    spans = [hours(0, latest_end)]
    for group in groups:
        ((begin, end),) = _windows(group, clock.seconds, latest_end)
        begin = min(begin, latest_end)
        spans.append(hours(begin, min(max(begin, end), latest_end)))
    return spans


def _address(shipment: Shipment) -> str:
    return f"{shipment.address_line1}, {shipment.city}"


def _service_times(groups, times: PlanningTimes, spans) -> list[int]:
    """Each stop's service time (whole seconds, for the solvers), at the middle of its span."""
    return [
        round(
            times.service_s(
                address=_address(group[0]),
                parcels=sum(s.parcel_count for s in group),
                location=group[0].location,
                local_hour=((begin + end) / 2) % 24,
            )
        )
        for group, (begin, end) in zip(groups, spans[1:], strict=True)
    ]


def _stops_by_address(shipments: list[Shipment]) -> list[list[Shipment]]:
    """One stop per address and compatible windows: a customer who ordered twice with windows
    that do not overlap (the morning and the evening) gets two visits, not one impossible one."""
    stops: dict[tuple[float, float], list[list[Shipment]]] = {}
    for shipment in shipments:
        visits = stops.setdefault((shipment.location.x, shipment.location.y), [])
        joined = next((v for v in visits if _overlaps(v, shipment)), None)
        if joined is None:
            visits.append([shipment])
        else:
            joined.append(shipment)
    return [visit for visits in stops.values() for visit in visits]


def _overlaps(visit: list[Shipment], shipment: Shipment) -> bool:
    """Whether the shipment's promised window meets every window of the visit's shipments."""
    starts = [s.promised_window_start for s in (*visit, shipment) if s.promised_window_start]
    ends = [s.promised_window_end for s in (*visit, shipment) if s.promised_window_end]
    return not starts or not ends or max(starts) < min(ends)


def _solve(
    groups,
    vehicles,
    matrix,
    clock,
    latest_end,
    services,
    max_stops_per_route,
    *,
    improve_s: float | None = None,
    margin_s: int = 0,
) -> dict:
    """VROOM's quick plan, then PyVRP's improvement of it (tracking/services/
    route_improvement.py) for `improve_s` seconds (by default, by the number of stops)."""
    fleet, jobs = _specs(
        groups, vehicles, clock, latest_end, services, max_stops_per_route, margin_s=margin_s
    )
    solution = _problem(fleet, jobs, matrix).solve(
        exploration_level=EXPLORATION_LEVEL, nb_threads=2, timeout=VROOM_TIMEOUT
    )
    return plan_improve(
        solution.to_dict(),
        durations=matrix.durations_s,
        distances=matrix.distances_m,
        vehicles=fleet,
        jobs=jobs,
        seconds=improvement_budget_s(len(jobs)) if improve_s is None else improve_s,
    )


def _specs(
    groups, vehicles, clock, latest_end, services, max_stops_per_route, *, margin_s: int = 0
) -> tuple[list[VehicleSpec], dict[int, JobSpec]]:
    """One vehicle per shift (capacity in parcels), one job per stop (its parcels, its service
    time `services[i - 1]`, the window all its shipments allow, planned to end `margin_s`
    early: room for a route running late, never less than MIN_PLANNED_WINDOW_S of the window),
    in solver seconds; job `i` is at matrix index `i` (0 is the hub)."""
    fleet = [
        VehicleSpec(
            capacity=shift.vehicle.capacity_parcels,
            start=clock.seconds(shift.shift_start),
            end=clock.seconds(shift.shift_end),
            max_tasks=max_stops_per_route,
        )
        for shift in vehicles
    ]
    jobs = {}
    for index, (group, service) in enumerate(zip(groups, services, strict=True), start=1):
        ((start, end),) = _windows(group, clock.seconds, latest_end)
        if margin_s:
            end = max(end - margin_s, min(end, start + MIN_PLANNED_WINDOW_S))
        jobs[index] = JobSpec(
            location=index,
            parcels=sum(s.parcel_count for s in group),
            service=service,
            start=start,
            end=end,
        )
    return fleet, jobs


def _problem(fleet: list[VehicleSpec], jobs: dict[int, JobSpec], matrix):
    """The VROOM problem of `_specs`."""
    import vroom

    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=matrix.durations_s)
    problem.set_distances_matrix(profile="car", matrix_input=matrix.distances_m)
    problem.add_vehicle(
        [
            vroom.Vehicle(
                index,
                start=0,
                end=0,
                capacity=[vehicle.capacity],
                time_window=vroom.TimeWindow(vehicle.start, vehicle.end),
                **({"max_tasks": vehicle.max_tasks} if vehicle.max_tasks else {}),
            )
            for index, vehicle in enumerate(fleet)
        ]
    )
    for index, job in jobs.items():
        problem.add_job(
            vroom.Job(
                index,
                location=job.location,
                delivery=[job.parcels],
                default_service=job.service,
                time_windows=[vroom.TimeWindow(job.start, job.end)],
            )
        )
    return problem


def _unassigned(solution, groups, vehicles, seconds, latest_end) -> list[dict]:
    """What the solver left out, each shipment with the likely reason."""
    unassigned = []
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
        unassigned.extend(
            {"shipment": s.pk, "reference": s.reference, "reason": reason} for s in group
        )
    return unassigned


def _route_specs(solution, hub, date, vehicles, groups, matrix, clock) -> tuple[list[dict], int]:
    """The solver's routes as `route_plan_create` specs, and how many stops meet every
    promised window."""
    specs, met = [], 0
    codes = _free_codes(hub, date, len(solution["routes"]))
    for number, route in enumerate(solution["routes"]):
        shift = vehicles[route["vehicle"]]
        steps = [step for step in route["steps"] if step["type"] == "job"]
        times = _earliest_schedule(
            steps, matrix.durations_s, groups, clock.seconds, clock.seconds(shift.shift_start)
        )
        stop_specs = []
        for step, at in zip(steps, times["arrivals"], strict=True):
            stop, in_window = _stop_spec(groups[step["job"] - 1], clock.at(at), step["service"])
            met += in_window
            stop_specs.append(stop)
        start, end = clock.at(times["start"]), clock.at(times["end"])
        visits = [0, *(step["location_index"] for step in steps), 0]
        path = route_path(
            [hub.location, *(s["location"] for s in stop_specs), hub.location],
            legs_s=[matrix.durations_s[a][b] for a, b in zip(visits, visits[1:], strict=False)],
        )
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
    return specs, met


def _stop_spec(group: list[Shipment], arrival: datetime, service_s: int) -> tuple[dict, bool]:
    in_window = all(
        (s.promised_window_start is None or arrival >= s.promised_window_start)
        and (s.promised_window_end is None or arrival <= s.promised_window_end)
        for s in group
    )
    spec = {
        "location": group[0].location,
        "address": _address(group[0]),
        "window_start": max(
            (s.promised_window_start for s in group if s.promised_window_start), default=None
        ),
        "window_end": min(
            (s.promised_window_end for s in group if s.promised_window_end), default=None
        ),
        "planned_arrival": arrival,
        "planned_service_s": service_s,
        "shipments": group,
    }
    return spec, in_window


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
