"""Route planning benchmark: 200 stops with promised windows on 10 vehicles, VROOM on the
Coquimbo road network's travel times.

    .venv/bin/python bench/planning.py

Creates its own organization (`bench-planning`) and a fresh service day each run; plans it
three times (dry runs) with the road graph already built, and reports the median run; writes
bench/results/planning.json. bench/planning_compare.py solves the same problem with PyVRP for
60 s to compare the cost.
"""

from __future__ import annotations

import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
# A benchmark signs nothing worth protecting; production settings refuse to start without a key.
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.contrib.gis.geos import Point  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from bench.world import benchmark_organization  # noqa: E402
from carriers.models import Carrier, Driver, Vehicle  # noqa: E402
from control_tower.tenancy.actors import Actor  # noqa: E402
from control_tower.tenancy.roles import Role  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from tracking.models import Hub, Shipment  # noqa: E402
from tracking.roads.routing import travel_matrix  # noqa: E402
from tracking.services.route_planning import VehicleShift, plan_routes  # noqa: E402

HUB = Point(-71.2489, -29.9045, srid=4326)
STOPS, VEHICLES, CAPACITY, SHIFT_H, WINDOW_H = 200, 10, 30, 10, 4
RUNS = int(os.environ.get("PLANNING_RUNS", "3"))


def bench_stops(start: datetime) -> list[tuple[Point, datetime]]:
    """The problem's stops (location, promised window start): the same every run, and the
    same in bench/planning_compare.py."""
    rng = random.Random(11)
    stops = []
    for _ in range(STOPS):
        location = Point(
            HUB.x + rng.uniform(-0.045, 0.045), HUB.y + rng.uniform(-0.045, 0.045), srid=4326
        )
        stops.append((location, start + timedelta(hours=rng.choice([0, 2, 4, 6]))))
    return stops


def main() -> None:
    organization = benchmark_organization("bench-planning", "Planning benchmark")
    run = int(time.time())
    day = date(2026, 1, 1) + timedelta(days=run // 60 % 3000)
    start = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    with organization_scope(organization):
        carrier, _ = Carrier.objects.get_or_create(
            organization=organization, code="bench", defaults={"name": "Bench", "kind": "gig"}
        )
        hub = Hub.objects.create(
            organization=organization,
            code=f"H{run}",
            name="Bench hub",
            location=HUB,
        )
        Shipment.objects.bulk_create(
            [
                Shipment(
                    organization=organization,
                    reference=f"B{run}-{n}",
                    barcode=f"B{run}{n}",
                    carrier=carrier,
                    hub=hub,
                    status="at_hub",
                    recipient_name="Bench",
                    address_line1=f"Calle {n}",
                    city="La Serena",
                    country_code="CL",
                    location=location,
                    promised_window_start=window_start,
                    promised_window_end=window_start + timedelta(hours=WINDOW_H),
                )
                for n, (location, window_start) in enumerate(bench_stops(start))
            ]
        )
        shifts = []
        for n in range(VEHICLES):
            vehicle = Vehicle.objects.create(
                organization=organization,
                carrier=carrier,
                plate=f"BV{run}-{n}",
                capacity_parcels=CAPACITY,
            )
            driver = Driver.objects.create(
                organization=organization, carrier=carrier, name=f"Bench driver {n}"
            )
            shifts.append(VehicleShift(vehicle, driver, start, start + timedelta(hours=SHIFT_H)))
        actor = Actor(organization=organization, role=Role.DISPATCHER)
        # A worker plans with its road graph already in memory: build it first, and say how
        # long that took (once per process and network import).
        began = time.perf_counter()
        travel_matrix([HUB, bench_stops(start)[0][0]])
        graph_ms = (time.perf_counter() - began) * 1000
        runs = []
        for _ in range(RUNS):
            began = time.perf_counter()
            result = plan_routes(actor=actor, hub=hub, date=day, vehicles=shifts, dry_run=True)
            runs.append(((time.perf_counter() - began) * 1000, result))
    elapsed_ms, result = sorted(runs, key=lambda run: run[0])[len(runs) // 2]  # the median run
    totals = result.totals
    results = {
        "plan_200_stops_10_vehicles_ms": round(elapsed_ms),
        "plan_runs_ms": " ".join(str(round(ms)) for ms, _ in runs),
        "graph_build_once_ms": round(graph_ms),
        "solver_and_matrix_ms": totals["computing_ms"],
        "solver_ms": totals["solver_ms"],
        "routes": totals["routes"],
        "stops_planned": totals["stops"],
        "unassigned_shipments": totals["unassigned_shipments"],
        "windows_met_pct": totals["windows_met_pct"],
        "drive_h": round(totals["drive_s"] / 3600, 1),
        "distance_km": round(totals["distance_m"] / 1000, 1),
        "matrix": totals["matrix"],
    }
    write_results("planning", results)


if __name__ == "__main__":
    main()
