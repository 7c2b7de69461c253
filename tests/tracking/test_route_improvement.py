"""PyVRP's improvement of VROOM's plan (tracking/services/route_improvement.py): on the same
problem the improved plan keeps every window, capacity, stop limit and shift, serves every
stop VROOM served (and one VROOM left out when it fits), and drives no longer."""

from __future__ import annotations

import math
import random

import pytest

from tracking.services.route_improvement import JobSpec, VehicleSpec, plan_improve
from tracking.services.route_planning import _problem


class Matrix:
    def __init__(self, points):
        self.durations_s = [[round(math.dist(a, b)) for b in points] for a in points]
        self.distances_m = [[round(8 * math.dist(a, b)) for b in points] for a in points]


def problem(stops=60, vehicles=4, capacity=20, max_tasks=None, seed=3):
    rng = random.Random(seed)
    points = [(0, 0)] + [(rng.uniform(-3000, 3000), rng.uniform(-3000, 3000)) for _ in range(stops)]
    fleet = [VehicleSpec(capacity, 0, 8 * 3600, max_tasks) for _ in range(vehicles)]
    jobs = {}
    for index in range(1, stops + 1):
        start = rng.choice([0, 2, 4]) * 3600
        jobs[index] = JobSpec(index, rng.choice([1, 1, 2]), 120, start, start + 3 * 3600)
    return Matrix(points), fleet, jobs


def check(solution, matrix, fleet, jobs) -> tuple[set[int], int]:
    """Every route feasible; returns (stops served, total driving)."""
    served, total = set(), 0
    for route in solution["routes"]:
        vehicle = fleet[route["vehicle"]]
        steps = [s for s in route["steps"] if s["type"] == "job"]
        assert sum(jobs[s["job"]].parcels for s in steps) <= vehicle.capacity
        assert vehicle.max_tasks is None or len(steps) <= vehicle.max_tasks
        t, here = vehicle.start, 0
        for step in steps:
            job = jobs[step["job"]]
            drive = matrix.durations_s[here][job.location]
            t = max(t + drive, job.start)
            assert t <= job.end
            total += drive
            t, here = t + job.service, job.location
            served.add(step["job"])
        total += matrix.durations_s[here][0]
        assert t + matrix.durations_s[here][0] <= vehicle.end
    return served, total


def vroom(matrix, fleet, jobs, level=0):
    return _problem(fleet, jobs, matrix).solve(exploration_level=level, nb_threads=1).to_dict()


@pytest.mark.parametrize("max_tasks,vehicles", [(None, 4), (12, 6)])
def test_the_improved_plan_is_valid_and_drives_no_longer(max_tasks, vehicles):
    matrix, fleet, jobs = problem(vehicles=vehicles, max_tasks=max_tasks)
    first = vroom(matrix, fleet, jobs)
    served_before, drive_before = check(first, matrix, fleet, jobs)
    better = plan_improve(
        first,
        durations=matrix.durations_s,
        distances=matrix.distances_m,
        vehicles=fleet,
        jobs=jobs,
        seconds=0.5,
    )
    served, drive = check(better, matrix, fleet, jobs)
    assert served == served_before == set(jobs)
    assert drive <= drive_before
    assert better["summary"]["duration"] == drive
    assert better["summary"]["distance"] == sum(r["distance"] for r in better["routes"])
    assert better["summary"]["service"] == sum(j.service for j in jobs.values())


def test_a_stop_vroom_left_out_is_served_when_it_fits():
    matrix, fleet, jobs = problem(stops=30, vehicles=3)
    first = vroom(matrix, fleet, jobs)
    assert first["unassigned"] == []
    # As if VROOM had stopped before fitting job 7 in.
    dropped = {
        **first,
        "routes": [
            {**r, "steps": [s for s in r["steps"] if s.get("job") != 7]} for r in first["routes"]
        ],
        "unassigned": [{"id": 7, "type": "job", "location_index": 7}],
    }
    better = plan_improve(
        dropped,
        durations=matrix.durations_s,
        distances=matrix.distances_m,
        vehicles=fleet,
        jobs=jobs,
        seconds=0.3,
    )
    served, _drive = check(better, matrix, fleet, jobs)
    assert served == set(jobs) and better["unassigned"] == []


def test_nothing_to_improve_returns_the_plan_itself():
    matrix, fleet, jobs = problem(stops=2, vehicles=1)
    first = vroom(matrix, fleet, jobs)
    kwargs = dict(durations=matrix.durations_s, distances=matrix.distances_m, vehicles=fleet)
    assert plan_improve(first, jobs=jobs, seconds=1, **kwargs) is first  # too small to search
    matrix, fleet, jobs = problem()
    first = vroom(matrix, fleet, jobs)
    assert plan_improve(first, jobs=jobs, seconds=0, **kwargs) is first  # no time given
