"""The planner's solver against a stronger one on the same problem: bench/planning.py's 200
stops × 10 vans (same stops, windows, capacities, shifts and Coquimbo travel times), solved by
the planner as tracking/services/route_planning.py runs it (VROOM's quick plan improved by PyVRP
for up to 1.2 s), by VROOM alone at each exploration level (the planner before: level 3) and by
PyVRP (iterated local search) for 60 s, the reference.

    .venv/bin/python bench/planning_compare.py [--pyvrp-seconds 60] [--levels 0,1,2,3,4,5]

Cost = total driving time (s), what both solvers minimise here (VROOM's cost is the travel
duration; PyVRP is given the durations as its distances). Each solution's cost is recomputed
from its stop order on the one matrix, and checked for windows, capacity and shift. Writes
bench/results/planning_compare.json. PyVRP is a dev dependency (pyproject `dev` extra).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from bench.planning import CAPACITY, HUB, SHIFT_H, VEHICLES, WINDOW_H, bench_stops  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from carriers.models import Driver, Vehicle  # noqa: E402
from tracking.models import Shipment  # noqa: E402
from tracking.roads.routing import travel_matrix  # noqa: E402
from tracking.services import route_planning as planner  # noqa: E402
from tracking.services.planning_times import DefaultTimes  # noqa: E402

SERVICE_S, PER_PARCEL_S = 180, 20  # plan_routes' defaults


def build():
    """The problem exactly as plan_routes builds it for bench/planning.py (unsaved rows)."""
    start = datetime(2026, 3, 2, 12, tzinfo=UTC)
    shipments = [
        Shipment(
            location=location,
            parcel_count=1,
            promised_window_start=window_start,
            promised_window_end=window_start + timedelta(hours=WINDOW_H),
        )
        for location, window_start in bench_stops(start)
    ]
    shifts = [
        planner.VehicleShift(
            Vehicle(capacity_parcels=CAPACITY), Driver(), start, start + timedelta(hours=SHIFT_H)
        )
        for _ in range(VEHICLES)
    ]
    groups = planner._stops_by_address(shipments)
    began = time.perf_counter()
    matrix = travel_matrix([HUB] + [group[0].location for group in groups])
    matrix_ms = (time.perf_counter() - began) * 1000
    clock = planner._SolverClock(start)
    latest_end = clock.seconds(start + timedelta(hours=SHIFT_H))
    return groups, shifts, matrix, matrix_ms, clock, latest_end


def check(routes: list[list[int]], durations, jobs, latest_end) -> int:
    """Total driving time of `routes` (stop orders, 1-based job locations), after checking
    every window, capacity and the shift end; every stop served once."""
    assert sorted(j for route in routes for j in route) == list(range(1, len(jobs) + 1))
    total = 0
    for route in routes:
        assert sum(jobs[j - 1][0] for j in route) <= CAPACITY
        t, here = 0, 0
        for j in route:
            _parcels, service, early, late = jobs[j - 1]
            t = max(t + durations[here][j], early)
            assert t <= late, "window missed"
            total += durations[here][j]
            t, here = t + service, j
        total += durations[here][0]
        assert t + durations[here][0] <= latest_end, "shift overrun"
    return total


def services(groups, clock, latest_end):
    """plan_routes' default service times of the stops."""
    spans = planner._local_spans(groups, clock, latest_end, UTC)
    return planner._service_times(groups, DefaultTimes(SERVICE_S, PER_PARCEL_S), spans)


def specs(groups, shifts, clock, latest_end):
    return planner._specs(
        groups, shifts, clock, latest_end, services(groups, clock, latest_end), None
    )


def routes_of(solution: dict) -> list[list[int]]:
    return [
        [step["location_index"] for step in route["steps"] if step["type"] == "job"]
        for route in solution["routes"]
    ]


def solve_planner(groups, shifts, matrix, clock, latest_end):
    """What plan_routes runs: VROOM's quick plan improved by PyVRP."""
    began = time.perf_counter()
    solution = planner._solve(
        groups, shifts, matrix, clock, latest_end, services(groups, clock, latest_end), None
    )
    return routes_of(solution), time.perf_counter() - began, len(solution.get("unassigned", []))


def solve_vroom(level, groups, shifts, matrix, clock, latest_end):
    """VROOM alone, as the planner ran it before (level 3)."""
    problem = planner._problem(*specs(groups, shifts, clock, latest_end), matrix)
    began = time.perf_counter()
    solution = problem.solve(exploration_level=level, nb_threads=2).to_dict()
    seconds = time.perf_counter() - began
    return routes_of(solution), seconds, len(solution.get("unassigned", []))


def solve_pyvrp(seconds, matrix, jobs, latest_end):
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    model = Model()
    durations = matrix.durations_s
    locations = [model.add_location(x=0, y=0) for _ in durations]
    depot = model.add_depot(locations[0])
    model.add_vehicle_type(
        num_available=VEHICLES,
        capacity=[CAPACITY],
        start_depot=depot,
        end_depot=depot,
        tw_early=0,
        tw_late=latest_end,
        unit_distance_cost=1,  # the "distance" below is the driving time
        unit_duration_cost=0,
    )
    for location, (parcels, service, early, late) in zip(locations[1:], jobs, strict=True):
        model.add_client(
            location, delivery=[parcels], service_duration=service, tw_early=early, tw_late=late
        )
    for i, a in enumerate(locations):
        for j, b in enumerate(locations):
            model.add_edge(a, b, distance=durations[i][j], duration=durations[i][j])
    result = model.solve(stop=MaxRuntime(seconds), seed=1, display=False)
    best = result.best
    assert best.is_feasible(), "PyVRP found no feasible solution"
    # Clients are numbered from 0 in the order added: client i is job (location) i + 1.
    routes = [
        [activity.idx + 1 for activity in route if activity.is_client()] for route in best.routes()
    ]
    return [route for route in routes if route], best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pyvrp-seconds", type=float, default=60)
    parser.add_argument("--levels", default="0,1,2,3,4,5")
    args = parser.parse_args()
    groups, shifts, matrix, matrix_ms, clock, latest_end = build()
    durations = matrix.durations_s
    _fleet, specs_by_job = specs(groups, shifts, clock, latest_end)
    jobs = [(j.parcels, j.service, j.start, j.end) for j in specs_by_job.values()]
    results: dict = {
        "stops": len(groups),
        "vehicles": VEHICLES,
        "matrix_201x201_cold_ms": round(matrix_ms),  # includes building the graph
    }
    routes, best = solve_pyvrp(args.pyvrp_seconds, matrix, jobs, latest_end)
    pyvrp_cost = check(routes, durations, jobs, latest_end)
    results["pyvrp_seconds"] = args.pyvrp_seconds
    results["pyvrp_drive_s"] = pyvrp_cost
    results["pyvrp_routes"] = len(routes)
    routes, seconds, unassigned = solve_planner(groups, shifts, matrix, clock, latest_end)
    cost = check(routes, durations, jobs, latest_end)
    results["planner_solve_ms"] = round(seconds * 1000)
    results["planner_drive_s"] = cost
    results["planner_unassigned"] = unassigned
    results["planner_gap_to_pyvrp_pct"] = round(100 * (cost / pyvrp_cost - 1), 2)
    for level in (int(x) for x in args.levels.split(",")):
        routes, seconds, unassigned = solve_vroom(level, groups, shifts, matrix, clock, latest_end)
        cost = check(routes, durations, jobs, latest_end) if not unassigned else None
        results[f"vroom_l{level}_solve_ms"] = round(seconds * 1000)
        results[f"vroom_l{level}_drive_s"] = cost
        results[f"vroom_l{level}_unassigned"] = unassigned
        if cost is not None:
            results[f"vroom_l{level}_gap_to_pyvrp_pct"] = round(100 * (cost / pyvrp_cost - 1), 2)
    write_results("planning_compare", results)


if __name__ == "__main__":
    main()
