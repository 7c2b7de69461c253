"""The learned tables' share of an ETA recompute: one route's estimate with the hourly factors
against the same estimate with the learned tables (tracking/eta/factors.py).

    .venv/bin/python bench/eta_tables.py [--routes 1000] [--stops 10]

No database: the tables are fitted on synthetic history (what `train` fits, with the real
groups and shrinkage), and `engine.live_windows` runs for `--routes` routes of `--stops` stops,
as the bulk recompute calls it (points as plain floats, as bulk.py gives them). Each route has
its own addresses and driver, so the remembered predictions are those a real burst would reuse
(the same hours, kinds of road and cells), not one route over and over. Writes
bench/results/eta_tables.json.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from bench.results_file import write_results  # noqa: E402
from tracking.eta.engine import LearnedRoute, live_windows  # noqa: E402
from tracking.eta.factors import (  # noqa: E402
    DWELL_GROUPS,
    TRAVEL_GROUPS,
    LearnedTimes,
    fit_trimmed,
    leg_keys,
    visit_keys,
)
from tracking.eta.legs import XY  # noqa: E402

ZONE = ZoneInfo("America/Santiago")
HUB = XY(-71.2489, -29.9045)


def synthetic_tables(rng: random.Random) -> LearnedTimes:
    """28 days of a 10-driver organization: ~4,000 legs and visits."""
    legs, leg_y, visits, visit_y = [], [], [], []
    for _ in range(4000):
        crew = (rng.randint(1, 4), rng.randint(1, 10))
        hour = rng.randint(8, 18)
        legs.append(
            leg_keys(
                hour=hour,
                weekday=rng.randint(0, 5),
                free_flow_s=rng.uniform(60, 600),
                crow_m=rng.uniform(200, 4000),
                way=rng.choice(["in", "out"]),
                crew=crew,
            )
        )
        leg_y.append(math.log(rng.uniform(1.0, 1.8)))
        point = XY(HUB.x + rng.uniform(-0.05, 0.05), HUB.y + rng.uniform(-0.05, 0.05))
        address = f"Calle {rng.randint(1, 40)} {rng.randint(1, 3000)}"
        visits.append(
            visit_keys(
                hour=hour, address=address, parcels=rng.randint(1, 3), point=point, crew=crew
            )
        )
        visit_y.append(math.log(rng.uniform(60, 400)))
    return LearnedTimes(
        1, fit_trimmed(legs, leg_y, TRAVEL_GROUPS), fit_trimmed(visits, visit_y, DWELL_GROUPS)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--stops", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(7)
    tables = synthetic_tables(rng)
    hourly = {str(h): 1.2 for h in range(24)}
    now = datetime(2026, 12, 7, 14, tzinfo=UTC)
    routes = []
    for number in range(args.routes):
        points = [
            XY(HUB.x + rng.uniform(-0.05, 0.05), HUB.y + rng.uniform(-0.05, 0.05))
            for _ in range(args.stops + 1)
        ]
        routes.append(
            LearnedRoute(
                times=tables,
                points=points,
                hub=HUB,
                crew=(number % 4 + 1, number % 10 + 1),
                addresses=[f"Calle {rng.randint(1, 40)} {rng.randint(1, 3000)}"] * args.stops,
                parcels=[rng.randint(1, 3) for _ in range(args.stops)],
            )
        )
    legs, dwells = [240.0] * args.stops, [180.0] * args.stops
    figures = {"routes": args.routes, "stops_per_route": args.stops}
    for name, learned in (("by_hour", None), ("tables_cold", True), ("tables_warm", True)):
        started = time.perf_counter()
        for route in routes:
            live_windows(
                legs,
                dwells,
                now,
                now,
                travel_by_hour=hourly,
                zone=ZONE,
                calibration=None,
                learned=route if learned else None,
            )
        ms = 1000 * (time.perf_counter() - started) / args.routes
        figures[f"{name}_ms_per_route"] = round(ms, 3)
        print(f"{name:12} {ms:.3f} ms per route of {args.stops} stops")
    write_results("eta_tables", figures)


if __name__ == "__main__":
    main()
