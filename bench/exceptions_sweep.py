"""The exceptions sweep over 2,000 running routes: what one pass of the time-based rules costs
(signal lost, stalled, off route, battery low, route not started, long dwell, escalation).

    .venv/bin/python bench/exceptions_sweep.py               # 2,000 routes, 20 sweeps
    .venv/bin/python bench/exceptions_sweep.py --routes 200  # a quick look

A benchmark organization with one tracker, driver and running route per vehicle. Each phone's
last 12 minutes of fixes (one a minute) go through the real ingest (`pings_ingest`), so the
last positions, flags and battery are what the platform itself stored. A share of the fleet is
in trouble: silent for 15 minutes, standing still away from its stops, far off its planned
line, a low battery; a few routes are planned and not started 30 minutes after their start.
The first sweep raises their alerts (the writing pass); the following ones find the same fleet
(the steady state, every 30 s in production). Time and queries are measured per sweep.

Results: printed, and written to bench/results/exceptions_sweep.json. Target: under 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")
# The ETA recomputes the ingest queues go to a queue of their own, dropped at the end.
BENCH_QUEUE = "bench-exceptions"
os.environ["CELERY_TASK_DEFAULT_QUEUE"] = BENCH_QUEUE

import django  # noqa: E402

django.setup()

from django.contrib.gis.geos import LineString, Point  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from bench.world import benchmark_organization, park_running_routes  # noqa: E402
from carriers.models import Carrier, Device, Driver, Vehicle  # noqa: E402
from control_tower.redis_clients import sync_redis  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from exceptions.models import Alert  # noqa: E402
from exceptions.sweep import sweep_organization  # noqa: E402
from tracking.ingest.fixes import Fix  # noqa: E402
from tracking.ingest.pings import pings_ingest  # noqa: E402
from tracking.models import DevicePosition, Hub, PingSource, Route, Stop  # noqa: E402

BENCH_SLUG = "bench-exceptions"
STOPS_PER_ROUTE = 10
LON, LAT = -71.25, -29.90
TABLES = ("carriers_device", "tracking_route", "tracking_stop", "tracking_deviceposition")


def fleet(organization, count: int, today):
    """Vehicles, drivers, trackers and running routes (created once, reused)."""
    carrier, _ = Carrier.objects.get_or_create(
        organization=organization, code="bench", defaults={"name": "Bench", "kind": "gig"}
    )
    hub, _ = Hub.objects.get_or_create(
        organization=organization,
        code="bench-hub",
        defaults={"name": "Bench hub", "location": Point(LON, LAT, srid=4326)},
    )
    have = Vehicle.objects.count()
    if have < count:
        print(f"creating {count - have} vehicles, drivers, trackers …", flush=True)
        new = Vehicle.objects.bulk_create(
            Vehicle(organization=organization, carrier=carrier, plate=f"BX-{i:05d}")
            for i in range(have, count)
        )
        drivers = Driver.objects.bulk_create(
            Driver(organization=organization, carrier=carrier, name=f"Driver {v.plate}")
            for v in new
        )
        Device.objects.bulk_create(
            Device(
                organization=organization,
                carrier=carrier,
                vehicle=v,
                driver=d,
                name=f"tracker {v.plate}",
                kind="gps_tracker",
                token_prefix=f"e{v.pk:015d}"[:16],
                token_hash="0" * 64,
            )
            for v, d in zip(new, drivers, strict=True)
        )
    vehicles = list(Vehicle.objects.order_by("pk")[:count])
    if Route.objects.filter(date=today).count() < count:
        print(f"creating {count} routes of {STOPS_PER_ROUTE} stops for {today} …", flush=True)
        Route.objects.filter(date=today).delete()
        drivers = {d.vehicle_id: d.driver_id for d in Device.objects.filter(vehicle__in=vehicles)}
        now = timezone.now()
        routes = Route.objects.bulk_create(
            Route(
                organization=organization,
                date=today,
                code=f"X{i:05d}",
                hub=hub,
                carrier=carrier,
                vehicle=vehicle,
                driver_id=drivers[vehicle.pk],
                status="in_progress",
                started_at=now - timedelta(hours=1),
                planned_start=now - timedelta(hours=1),
                planned_geometry=LineString(
                    [(LON + k * 0.002, LAT - (i % 200) * 0.002) for k in range(40)], srid=4326
                ),
            )
            for i, vehicle in enumerate(vehicles)
        )
        Stop.objects.bulk_create(
            (
                Stop(
                    organization=organization,
                    route=route,
                    sequence=s + 1,
                    location=Point(LON + 0.07 + s * 0.004, LAT - 0.5, srid=4326),
                    address=f"Calle {s}",
                    status="completed" if s < 3 else "pending",
                )
                for route in routes
                for s in range(STOPS_PER_ROUTE)
            ),
            batch_size=5000,
        )
    return list(Route.objects.filter(date=today).select_related("vehicle").order_by("code"))


def report_fixes(organization, routes, now) -> dict:
    """Twelve minutes of fixes per phone through the real ingest; every 20th route in each kind
    of trouble. Returns how many routes of each."""
    vehicles = [r.vehicle_id for r in routes]
    devices = {d.vehicle_id: d for d in Device.objects.filter(vehicle__in=vehicles)}
    DevicePosition.objects.filter(device__in=devices.values()).delete()
    trouble = {"silent": 0, "stalled": 0, "off_route": 0, "battery_low": 0, "moving": 0}
    for index, route in enumerate(routes):
        line_lat = LAT - (index % 200) * 0.002
        kind = ("silent", "stalled", "off_route", "battery_low", *["moving"] * 16)[index % 20]
        trouble[kind] += 1
        fixes = []
        for minute in range(12, -1, -1):
            t = (now - timedelta(minutes=minute)).replace(microsecond=0)
            if kind == "silent" and minute < 15:
                continue  # nothing for the last quarter hour
            step = 12 - minute
            lon = LON + 0.002 + (0 if kind == "stalled" else step * 0.004)
            lat = line_lat - (0.01 if kind == "off_route" else 0.0)  # ~1.1 km off its line
            fixes.append(
                Fix(
                    fix_time=t,
                    lat=lat,
                    lon=lon,
                    accuracy_m=8.0,
                    speed_mps=0.0 if kind == "stalled" else 6.0,
                    battery_pct=9 if kind == "battery_low" else 80,
                    charging=False,
                )
            )
        if kind == "silent":
            fixes = [
                Fix(
                    fix_time=(now - timedelta(minutes=m)).replace(microsecond=0),
                    lat=line_lat,
                    lon=LON + 0.002 + (20 - m) * 0.004,
                    accuracy_m=8.0,
                    speed_mps=6.0,
                )
                for m in range(20, 15, -1)
            ]
        pings_ingest(device=devices[route.vehicle_id], fixes=fixes, source=PingSource.OSMAND)
    late = routes[: max(1, len(routes) // 100)]  # planned, and not started half an hour later
    Route.objects.filter(pk__in=[r.pk for r in late]).update(
        status="planned", started_at=None, planned_start=now - timedelta(minutes=30)
    )
    trouble["not_started"] = len(late)
    return trouble


def rule_costs(organization) -> dict[str, float]:
    """One steady-state pass, rule by rule (what sweep_organization runs), in ms: where the
    sweep's time goes."""
    from exceptions.rules import (
        battery_low,
        long_dwell,
        off_route,
        route_not_started,
        signal_lost,
        stalled,
    )
    from exceptions.rules.common import running_routes
    from exceptions.services import alerts_escalate

    now = timezone.now()
    costs = {}

    def timed(name, call):
        began = time.perf_counter()
        result = call()
        costs[name] = (time.perf_counter() - began) * 1000
        return result

    routes = timed("snapshot", lambda: running_routes(organization.pk, now))
    timed("signal_lost", lambda: signal_lost.sweep(organization.pk, routes, now))
    timed("stalled", lambda: stalled.sweep(organization.pk, routes, now))
    timed("battery_low", lambda: battery_low.sweep(organization.pk, routes, now))
    timed("route_not_started", lambda: route_not_started.sweep(organization.pk, now))
    timed("off_route", lambda: off_route.sweep(organization.pk, routes, now))
    timed("long_dwell", lambda: long_dwell.sweep(organization, now))
    timed("escalate", lambda: alerts_escalate(now, organization_id=organization.pk))
    return costs


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=2000)
    parser.add_argument("--sweeps", type=int, default=20)
    args = parser.parse_args()
    organization = benchmark_organization(BENCH_SLUG, "Exceptions benchmark")
    today = timezone.now().astimezone(organization.zone).date()
    try:
        with organization_scope(organization):
            routes = fleet(organization, args.routes, today)
            Route.objects.filter(date=today).update(status="in_progress")
            Alert.objects.all().delete()  # a fresh start: the first sweep raises everything
            now = timezone.now()
            started = time.perf_counter()
            trouble = report_fixes(organization, routes, now)
            ingest_s = time.perf_counter() - started
        # Fresh statistics, as autovacuum keeps them in production: just after thousands of
        # rows were created the planner still believes the organization has one device and
        # scans all of them for every route (~40x slower snapshot, measured).
        with connection.cursor() as cursor:
            for table in TABLES:
                cursor.execute(f"ANALYZE {table}")
        timings, queries = [], []
        first = {}
        for index in range(args.sweeps + 1):
            at = timezone.now()
            reset_queries()  # the ingest filled the debug log: count from empty
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                counts = sweep_organization(organization, at)
                elapsed = time.perf_counter() - began
            if index == 0:
                first = {"ms": elapsed * 1000, "queries": len(captured), "counts": counts}
                continue
            timings.append(elapsed * 1000)
            queries.append(len(captured))
        with organization_scope(organization):
            open_alerts = Alert.objects.exclude(state="resolved").count()
            parts = rule_costs(organization)
    finally:
        park_running_routes(organization)
        sync_redis().delete(BENCH_QUEUE)
    raised = {kind: pair[0] for kind, pair in first["counts"].items() if kind != "escalated"}
    results = {
        "routes": args.routes,
        "sweeps": args.sweeps,
        "fixes_ingest_s": round(ingest_s, 1),
        **{f"trouble_{kind}_routes": n for kind, n in trouble.items()},
        **{f"first_sweep_raised_{kind}": n for kind, n in raised.items()},
        "first_sweep_ms": round(first["ms"], 1),
        "first_sweep_queries": first["queries"],
        "sweep_p50_ms": round(statistics.median(timings), 1),
        "sweep_p95_ms": round(percentile(timings, 0.95), 1),
        "sweep_max_ms": round(max(timings), 1),
        "sweep_queries": max(queries),
        "open_alerts": open_alerts,
        **{f"steady_{name}_ms": round(ms, 1) for name, ms in parts.items()},
        "target_sweep_ms": 1000,
        # The target is the steady sweep (every 30 s); the first one raises hundreds of alerts
        # at once (each in its own transaction, with its event) and is reported apart.
        "target_met": percentile(timings, 0.95) < 1000,
        "first_sweep_under_target": first["ms"] < 1000,
    }
    write_results("exceptions_sweep", results)


if __name__ == "__main__":
    main()
