"""ETA recompute benchmark: how long recomputing the ETAs of 1,000 active routes takes, and so
what ping → stored ETA latency the 15 s sweep can promise on this machine.

    .venv/bin/python bench/eta.py [--routes 1000]

Creates its own organization (`bench-eta`) with routes of 10 stops each around La Serena on the
Coquimbo road network, a device per route with a fresh position, then times
`route_eta_update` for every route (the one-route recompute: stop events, plan changes), and
`routes_eta_update` on the same routes in batches of --batch (what `tracking.eta_burst` and
`tracking.eta_sweep` run), interleaved (one-route, bulk, one-route, bulk), in one process.
Writes bench/results/eta.json.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
# A benchmark signs nothing worth protecting; production settings refuse to start without a key.
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.contrib.gis.geos import Point  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from bench.world import benchmark_organization, park_running_routes  # noqa: E402
from carriers.device_auth import DEVICE_TOKEN_KIND  # noqa: E402
from carriers.models import Carrier, Device, Driver  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from control_tower.tenancy.secrets import issue_secret  # noqa: E402
from tracking.eta.bulk import BATCH_MAX, routes_eta_update  # noqa: E402
from tracking.eta.recompute import route_eta_update  # noqa: E402
from tracking.models import DevicePosition, Hub, Route, Stop  # noqa: E402


def build(organization, count: int, rng: random.Random) -> tuple[list[Route], list[str]]:
    """`count` running routes of 10 stops, each driver with a phone (real token, returned in
    route order) that reported a moment ago."""
    today = timezone.localdate()
    carrier, _ = Carrier.objects.get_or_create(
        organization=organization, code="bench", defaults={"name": "Bench", "kind": "gig"}
    )
    hub, _ = Hub.objects.get_or_create(
        organization=organization,
        code="H",
        defaults={"name": "Bench hub", "location": Point(-71.2489, -29.9045, srid=4326)},
    )
    # A fresh fleet each run (the previous run's routes, devices and drivers go).
    Route.objects.filter(date=today).delete()
    Device.objects.filter(carrier=carrier).delete()
    Driver.objects.filter(carrier=carrier).delete()
    drivers = Driver.objects.bulk_create(
        [Driver(organization=organization, carrier=carrier, name=f"D{n}") for n in range(count)]
    )
    routes = Route.objects.bulk_create(
        [
            Route(
                organization=organization,
                date=today,
                code=f"R{n:04d}",
                hub=hub,
                carrier=carrier,
                driver=driver,
                status="in_progress",
                planned_start=timezone.now(),
            )
            for n, driver in enumerate(drivers)
        ]
    )

    def near():
        return Point(
            -71.2489 + rng.uniform(-0.04, 0.04), -29.9045 + rng.uniform(-0.04, 0.04), srid=4326
        )

    Stop.objects.bulk_create(
        [
            Stop(
                organization=organization,
                route=route,
                sequence=s,
                location=near(),
                planned_service_s=180,
            )
            for route in routes
            for s in range(1, 11)
        ]
    )
    secrets = [issue_secret(DEVICE_TOKEN_KIND) for _route in routes]
    devices = Device.objects.bulk_create(
        [
            Device(
                organization=organization,
                carrier=carrier,
                driver=route.driver,
                name="bench",
                kind="driver_app",
                token_prefix=secret.prefix,
                token_hash=secret.digest,
            )
            for route, secret in zip(routes, secrets, strict=True)
        ]
    )
    now = timezone.now()
    DevicePosition.objects.bulk_create(
        [
            DevicePosition(
                organization=organization,
                device=device,
                fix_time=now,
                received_at=now,
                location=near(),
                source="native",
            )
            for device in devices
        ]
    )
    return routes, [secret.raw for secret in secrets]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=BATCH_MAX, help="routes per bulk recompute")
    args = parser.parse_args()
    organization = benchmark_organization("bench-eta", "ETA benchmark")
    rng = random.Random(3)
    with organization_scope(organization):
        routes, _tokens = build(organization, args.routes, rng)
        route_eta_update(Route.objects.select_related("hub").get(pk=routes[0].pk))  # warm graph
        ids = [r.pk for r in routes]

        def sweep():
            timings = []
            started = time.perf_counter()
            for route in Route.objects.filter(pk__in=ids).select_related("hub"):
                begin = time.perf_counter()
                route_eta_update(route)
                timings.append(time.perf_counter() - begin)
            return timings, time.perf_counter() - started

        def bulk():
            timings = []
            started = time.perf_counter()
            loaded = list(Route.objects.filter(pk__in=ids).select_related("hub", "organization"))
            for start in range(0, len(loaded), args.batch):
                begin = time.perf_counter()
                routes_eta_update(loaded[start : start + args.batch])
                timings.append(time.perf_counter() - begin)
            return timings, time.perf_counter() - started

        _cold, cold_total = sweep()  # first sweep: every stop-to-stop leg computed
        # Steady state (only position -> next stop is new), interleaved: one-route, bulk, twice.
        timings, total = sweep()
        batches, bulk_total = bulk()
        timings_2, total_2 = sweep()
        batches_2, bulk_total_2 = bulk()
    total, bulk_total = min(total, total_2), min(bulk_total, bulk_total_2)
    batches = batches if sum(batches) <= sum(batches_2) else batches_2
    cuts = statistics.quantiles(timings, n=100)
    sweep_s = 15
    results = {
        "routes": args.routes,
        "stops_per_route": 10,
        "first_sweep_all_routes_s": round(cold_total, 1),
        "recompute_all_routes_s": round(total, 1),
        "route_recompute_p50_ms": round(cuts[49] * 1000, 1),
        "route_recompute_p95_ms": round(cuts[94] * 1000, 1),
        "routes_per_s_one_worker": round(args.routes / total, 1),
        "bulk_batch_routes": args.batch,
        "bulk_recompute_all_routes_s": round(bulk_total, 2),
        "bulk_route_recompute_mean_ms": round(bulk_total / args.routes * 1000, 2),
        "bulk_batch_max_ms": round(max(batches) * 1000, 1),
        "bulk_routes_per_s_one_worker": round(args.routes / bulk_total, 1),
        "bulk_speedup_x": round(total / bulk_total, 1),
        # A ping waits for the next sweep (up to 15 s), then for its route's turn in the sweep.
        "ping_to_eta_worst_case_s_one_worker": round(sweep_s + total, 1),
    }
    write_results("eta", results)
    park_running_routes(organization)


if __name__ == "__main__":
    main()
