"""Improving VROOM's plan with PyVRP (iterated local search, PyVRP 0.14), for a fixed time budget.

Measured on bench/planning.py's 200 stops × 10 vans (bench/planning_compare.py): VROOM at its
exploration level 3 took ~3 s (quiet machine) for a plan ~3-4 % longer to drive than PyVRP's
after 60 s, and its level 5 (~7 s) is still ~3 % longer. PyVRP from VROOM's quick plan got
within 1.8-1.9 % of its own 60 s result in 1-1.2 s, on a loaded machine. VROOM keeps what it
does well and fast: a feasible first plan (cut short after 0.1 s) and what cannot be served,
with the reason; PyVRP then reorders and reassigns the served stops, and serves a stop VROOM
left out when it can. The result replaces VROOM's only when PyVRP finds a feasible plan that
serves more stops, or as many and drives less, so it is never worse.

Both minimise driving time: PyVRP is given the travel durations as its "distance".
"""

from __future__ import annotations

from dataclasses import dataclass

# Search time per stop, capped: small plans settle in a fraction of a second.
SECONDS_PER_STOP = 0.006
MAX_SECONDS = 1.2
NO_LIMIT = 1 << 30
MISSED_STOP_PRIZE = 10_000_000  # s of driving: more than any route could add to serve a stop


@dataclass(frozen=True)
class VehicleSpec:
    capacity: int
    start: int  # solver seconds
    end: int
    max_tasks: int | None = None


@dataclass(frozen=True)
class JobSpec:
    location: int  # index into the matrices
    parcels: int
    service: int
    start: int
    end: int


def improvement_budget_s(stops: int) -> float:
    return min(MAX_SECONDS, SECONDS_PER_STOP * stops)


def plan_improve(
    solution: dict,
    *,
    durations: list[list[int]],
    distances: list[list[int]],
    vehicles: list[VehicleSpec],
    jobs: dict[int, JobSpec],
    seconds: float,
    seed: int = 0,
) -> dict:
    """`solution` (VROOM's `to_dict()`: routes of job steps by vehicle index, summary,
    unassigned) improved by PyVRP within `seconds`, in the same shape; or `solution` itself
    when nothing better is found. No side effects."""
    served = [
        step["job"]
        for route in solution.get("routes", [])
        for step in route["steps"]
        if step["type"] == "job"
    ]
    if seconds <= 0 or len(served) < 3:
        return solution
    # What VROOM left out (it may have stopped early) is offered again, optional but worth
    # more than any detour: PyVRP serves it when it can.
    largest = max(vehicle.capacity for vehicle in vehicles)
    optional = [
        u["id"]
        for u in solution.get("unassigned", [])
        if jobs[u["id"]].start <= jobs[u["id"]].end and jobs[u["id"]].parcels <= largest
    ]
    candidates = served + optional
    import numpy as np
    from pyvrp import Client, Depot, Location, ProblemData, Route, Solution, VehicleType
    from pyvrp.solve import solve
    from pyvrp.stop import MaxRuntime

    points = [0, *(jobs[job].location for job in candidates)]  # the hub, then each stop
    driving = np.asarray(durations, dtype=np.int64)[np.ix_(points, points)]
    data = ProblemData(
        locations=[Location(x=0, y=0) for _ in points],
        clients=[
            Client(
                location=number,
                delivery=[jobs[job].parcels, 1],  # parcels, and one stop (for max_tasks)
                service_duration=jobs[job].service,
                tw_early=jobs[job].start,
                tw_late=jobs[job].end,
                required=number <= len(served),
                prize=MISSED_STOP_PRIZE,
            )
            for number, job in enumerate(candidates, start=1)
        ],
        depots=[Depot(location=0)],
        vehicle_types=[
            VehicleType(
                num_available=1,
                capacity=[vehicle.capacity, vehicle.max_tasks or NO_LIMIT],
                tw_early=vehicle.start,
                tw_late=vehicle.end,
                unit_distance_cost=1,  # the "distance" is the driving time
                unit_duration_cost=0,
            )
            for vehicle in vehicles
        ],
        distance_matrices=[driving],
        duration_matrices=[driving],
    )
    client = {job: index for index, job in enumerate(served)}
    start = Solution(
        data,
        [
            Route(
                data,
                [client[step["job"]] for step in route["steps"] if step["type"] == "job"],
                route["vehicle"],
            )
            for route in solution["routes"]
        ],
    )
    best = solve(
        data, stop=MaxRuntime(seconds), seed=seed, collect_stats=False, initial_solution=start
    ).best
    better = (best.num_clients(), -best.distance()) > (start.num_clients(), -start.distance())
    if not best.is_feasible() or not better:
        return solution
    routes = []
    for route in best.routes():
        stops = [candidates[activity.idx] for activity in route if activity.is_client()]
        if stops:
            routes.append(_vroom_route(route.vehicle_type(), stops, jobs, durations, distances))
    now_served = {step["job"] for route in routes for step in route["steps"]}
    return {
        **solution,
        "routes": routes,
        "unassigned": [u for u in solution.get("unassigned", []) if u["id"] not in now_served],
        "summary": {
            **solution["summary"],
            "duration": sum(r["duration"] for r in routes),
            "distance": sum(r["distance"] for r in routes),
            "service": sum(step["service"] for r in routes for step in r["steps"]),
        },
    }


def _vroom_route(vehicle: int, stops: list[int], jobs, durations, distances) -> dict:
    here, drive, metres, steps = 0, 0, 0, []
    for job in stops:
        spec = jobs[job]
        drive += durations[here][spec.location]
        metres += distances[here][spec.location]
        steps.append(
            {"type": "job", "job": job, "location_index": spec.location, "service": spec.service}
        )
        here = spec.location
    drive += durations[here][0]
    metres += distances[here][0]
    return {"vehicle": vehicle, "steps": steps, "duration": drive, "distance": metres}
