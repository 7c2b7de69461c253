"""Planning with learned times against the defaults, on simulated days (issue 20 §6).

    .venv/bin/python manage.py load_demo --history 28 [--world rich]
    .venv/bin/python manage.py train_eta --org demo
    .venv/bin/python bench/planning_learned.py [--org demo] [--days 5] [--seed 1001] \
        [--world rich|simple]

Needs an organization with history and a trained ETA model (the bench trains one when there is
none). For each of `--days` days after the organization's last planned day: the day's shipments
are drawn as the demo draws a live day (tracking/simulation/demo_day.py: promised windows drawn
before planning; in the rich world, to the city's customers; by default each customer booked a
2-hour slot, `--slot-hours`), each hub is planned on the demo's drivers and shifts twice, with
`DefaultTimes()` and with the organization's learned times (same shipments, vehicles, shifts),
and each plan is driven through the hidden world (tracking/simulation/timeline.py
`route_timeline`, the same `WorldConfig` for both plans, a noise seed not used in the history).
Nothing is stored: each day's shipments are rolled back.

Measured per plan:
- inside window: the share of the day's stops whose true arrival is inside the promised window;
  unassigned shipments count as missed. A driver never hands a parcel over before its window
  opens: an early arrival waits at the door until it opens (so it is inside), and everything
  after it on the route happens that much later (the world's leg times are kept, not redrawn
  at the later hour);
- overtime: minutes past the shift's end at the true return to the hub, summed over routes;
- km driven (the world's legs, in the order the driver really drove them);
- unassigned shipments;
- missed stops, and how many of them were on routes the world made leave the hub 25-90 min
  late (`may_start_late`: what no plan can foresee).

Each route is driven with its driver's code as the world's key, so the two plans of a day give
a driver the same late start and the same noise leg by leg. Writes
bench/results/planning_learned.json.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402
from django.db.models import Max  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from control_tower.models import Organization  # noqa: E402
from control_tower.tenancy.actors import Actor  # noqa: E402
from control_tower.tenancy.roles import Role  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from tracking.eta.learning import train  # noqa: E402
from tracking.models import Hub, Route  # noqa: E402
from tracking.services.planning_times import DefaultTimes, learned_times  # noqa: E402
from tracking.services.route_planning import VehicleShift, plan_routes  # noqa: E402
from tracking.services.shipments import shipments_bulk_create  # noqa: E402
from tracking.simulation.demo_day import (  # noqa: E402
    ROUTE_START,
    _drivers_plan,
    _hub_batches,
    _phone_vehicles,
    _shipment_item,
    _to_customer,
)
from tracking.simulation.timeline import StopPlan, cached_legs, route_timeline  # noqa: E402
from tracking.simulation.world import World, WorldConfig  # noqa: E402

SHIFT_H = 10  # the demo's shifts (demo_day._solver_routes)
SLOT_END_H = 8  # booked slots end by 17:00: the rest of the shift brings the vans back
PLANS = ("default", "learned")


class Rollback(Exception):
    """Leaves the day's shipments out of the database."""


def day_shipments(actor, day, zone, hubs, count: int, kind: str, slot_h: int) -> list:
    """The day's shipments as the demo draws a live day (windows before planning); the rich
    world's go to its customers' addresses, as its history's did. With `slot_h`, each customer
    booked a slot of that many hours instead (the first starting at the shifts' start, the
    last ending SLOT_END_H later): what a carrier selling scheduled delivery plans against."""
    rng = random.Random(day.toordinal())  # noqa: S311 - the demo's own draw for that day
    day_start = datetime.combine(day, ROUTE_START, tzinfo=zone)
    items = [_shipment_item(rng, day, day_start, n, hubs, {}) for n in range(1, count + 1)]
    if slot_h:
        for item in items:
            pick = random.Random(f"slot:{item['reference']}")  # noqa: S311 - repeatable
            start = day_start + timedelta(hours=pick.randint(0, SLOT_END_H - slot_h))
            item["promised_window_start"] = start
            item["promised_window_end"] = start + timedelta(hours=slot_h)
    if kind == "rich":
        today: set[str] = set()
        for item in items:
            _to_customer(item, hubs, today)
    return shipments_bulk_create(actor=actor, items=items)


def drive(world: World, zone, day, hub, spec: dict, shift_end: datetime) -> dict:
    """One planned route through the world: stops inside their window, overtime, km."""
    stops = spec["stops"]
    plans = [
        StopPlan(
            stop_id=n,
            sequence=n,
            location=stop["location"],
            address=stop["address"],
            parcels=sum(s.parcel_count for s in stop["shipments"]) or 1,
            shipment_ids=(),
            barcodes=(),
            window_end=stop["window_end"],
        )
        for n, stop in enumerate(stops)
    ]
    timeline = route_timeline(
        world,
        route_id=0,
        code=spec["driver"].external_id,
        day=day.isoformat(),
        start=spec["planned_start"],
        start_point=hub.location,
        hub=hub.location,
        stops=plans,
        zone=zone,
        interval_s=600,
        may_start_late=True,
        carrier=spec["carrier"].code,
        driver=spec["driver"].external_id,
    )
    late_by, inside = timedelta(0), 0
    for truth in timeline.stops:
        stop = stops[truth.stop_id]
        arrival = truth.arrival + late_by
        if stop["window_start"] is not None and arrival < stop["window_start"]:
            late_by += stop["window_start"] - arrival  # waits at the door
            arrival = stop["window_start"]
        inside += stop["window_end"] is None or arrival <= stop["window_end"]
    back = timeline.end + late_by
    left_late = any(c["kind"] == "route_not_started" for c in timeline.conditions)
    return {
        "stops": len(stops),
        "inside": inside,
        "missed_on_late_starts": (len(stops) - inside) if left_late else 0,
        "overtime_min": max(0.0, (back - shift_end).total_seconds() / 60),
        "km": sum(leg["length_m"] for leg in timeline.legs) / 1000,
    }


def plan_and_drive(actor, world, zone, day, hubs, shipments, times) -> dict:
    totals = dict.fromkeys(
        ("stops", "inside", "missed_on_late_starts", "overtime_min", "km", "unassigned"), 0.0
    )
    own_vehicle = _phone_vehicles()
    for hub, drivers, mine, count in _hub_batches(_drivers_plan(), hubs, shipments):
        start = datetime.combine(day, ROUTE_START, tzinfo=zone)
        end = start + timedelta(hours=SHIFT_H)
        shifts = [VehicleShift(own_vehicle[d.pk], d, start, end) for d in drivers[:count]]
        result = plan_routes(
            actor=actor,
            hub=hub,
            date=day,
            vehicles=shifts,
            shipments=mine,
            max_stops_per_route=math.ceil(len(mine) / count) + 2,
            dry_run=True,
            times=times,
        )
        for spec in result.routes:
            for key, value in drive(world, zone, day, hub, spec, end).items():
                totals[key] += value
        totals["unassigned"] += len(result.unassigned)
        totals["times"] = result.totals["times"]
    return totals


def spread(values: list[float]) -> str:
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--org", default="demo")
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1001, help="The world's noise (not history's).")
    parser.add_argument(
        "--world", default="rich", choices=["rich", "simple"], help="As the history's."
    )
    parser.add_argument("--shipments", type=int, default=150)
    parser.add_argument(
        "--slot-hours",
        type=int,
        default=2,
        help="Customers book slots this long (0: the demo's own 4-9 h windows).",
    )
    args = parser.parse_args()
    began = time.perf_counter()
    organization = Organization.objects.get(slug=args.org)
    zone = ZoneInfo(organization.time_zone)
    world = World(WorldConfig(kind=args.world, seed=args.seed))
    with organization_scope(organization):
        learned = learned_times(organization)
        if learned is None:
            train(organization)
            learned = learned_times(organization)
        if learned is None:
            raise SystemExit("No trained ETA model: load history first (load_demo --history 14).")
        actor = Actor(organization=organization, role=Role.DISPATCHER)
        hubs = {hub.code: hub for hub in Hub.objects.all()}
        first = Route.objects.aggregate(last=Max("date"))["last"] + timedelta(days=1)
        days = [first + timedelta(days=n) for n in range(args.days)]
        per_day = []
        for day in days:
            figures = {}
            try:
                with transaction.atomic(), cached_legs():
                    shipments = day_shipments(
                        actor, day, zone, hubs, args.shipments, args.world, args.slot_hours
                    )
                    learned = learned_times(organization, weekday=day.weekday())
                    for name, times in zip(PLANS, (DefaultTimes(), learned), strict=True):
                        figures[name] = plan_and_drive(
                            actor, world, zone, day, hubs, shipments, times
                        )
                    raise Rollback
            except Rollback:
                pass
            per_day.append(figures)
            print(
                day,
                " | ".join(
                    f"{name}: {100 * f['inside'] / (f['stops'] + f['unassigned']):.1f} % inside, "
                    f"{f['overtime_min']:.0f} min overtime, {f['km']:.1f} km, "
                    f"{f['unassigned']:.0f} unassigned"
                    for name, f in figures.items()
                ),
                flush=True,
            )
    results = {
        "organization": args.org,
        "world": args.world,
        "world_seed": args.seed,
        "days": len(days),
        "first_day": days[0].isoformat(),
        "shipments_per_day": args.shipments,
        "slot_h": args.slot_hours,
        "learned_times": learned.label,
    }
    for name in PLANS:
        inside = [
            100 * d[name]["inside"] / (d[name]["stops"] + d[name]["unassigned"]) for d in per_day
        ]
        all_inside = sum(d[name]["inside"] for d in per_day)
        all_stops = sum(d[name]["stops"] + d[name]["unassigned"] for d in per_day)
        results[f"{name}_inside_window_pct"] = round(100 * all_inside / all_stops, 1)
        results[f"{name}_inside_window_pct_min_median_max"] = spread(inside)
        results[f"{name}_overtime_min"] = round(sum(d[name]["overtime_min"] for d in per_day))
        results[f"{name}_overtime_min_per_day_min_median_max"] = spread(
            [d[name]["overtime_min"] for d in per_day]
        )
        results[f"{name}_km"] = round(sum(d[name]["km"] for d in per_day), 1)
        results[f"{name}_km_per_day_min_median_max"] = spread([d[name]["km"] for d in per_day])
        results[f"{name}_unassigned_shipments"] = int(sum(d[name]["unassigned"] for d in per_day))
        # What no plan can keep: stops missed on routes the world made leave the hub late.
        results[f"{name}_missed_stops"] = all_stops - all_inside
        results[f"{name}_missed_stops_on_late_starts"] = int(
            sum(d[name]["missed_on_late_starts"] for d in per_day)
        )
    gap = 100 - results["default_inside_window_pct"]
    closed = results["learned_inside_window_pct"] - results["default_inside_window_pct"]
    results["gap_closed_pct"] = round(100 * closed / gap, 1) if gap else 100.0
    results["extra_km_pct"] = round(100 * (results["learned_km"] / results["default_km"] - 1), 1)
    results["target_met"] = results["gap_closed_pct"] >= 50 and results["extra_km_pct"] <= 5
    results["run_s"] = round(time.perf_counter() - began)
    write_results("planning_learned", results)


if __name__ == "__main__":
    main()
