"""Ping → stored ETA latency with 1,000 active routes, end to end on real processes.

    .venv/bin/python bench/eta_latency.py [--routes 1000] [--duration 60] [--warmup 60]
        [--workers 1] [--concurrency 2]

Builds bench/eta.py's routes (10 stops each on the Coquimbo network, a phone per driver with a
real token), starts uvicorn (`control_tower.asgi:application`, so pings take the OsmAnd fast
path) and --workers real Celery workers of --concurrency processes each, the first with beat
(`celery -A control_tower worker -B`: the ETA sweep and the outbox relay run too), then drives
every phone at one ping per --interval seconds over HTTP on loopback. Each ping that opens its
route's debounce window (ETA_DEBOUNCE_S) makes the route due; a burst task recomputes what is
due and logs, per route, when the triggering ping was received and how long after it the ETAs
were stored (`ping_to_eta_ms`). Figures count the pings received after the warm-up. Every 5 s it
samples the Celery queue, the routes still due and the undelivered outbox rows: a backlog
"grows" when its slope over the second half of the run is above 1 a minute and it ends above 50
(bench/soak_watch.py's rule). Writes bench/results/eta_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
# A benchmark signs nothing worth protecting; production settings refuse to start without a key.
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db.models import Min  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.eta import build  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from bench.soak_watch import grows, slope_per_min  # noqa: E402
from bench.world import benchmark_organization, park_running_routes  # noqa: E402
from control_tower.celery import app  # noqa: E402
from control_tower.events.models import OutboxEvent  # noqa: E402
from control_tower.redis_clients import sync_redis  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from tracking.eta.bulk import BATCH_MAX, routes_eta_update  # noqa: E402
from tracking.eta.triggers import due_key  # noqa: E402
from tracking.models import DevicePosition, Route, Stop  # noqa: E402

LINE = re.compile(r"eta stored route=(\d+) ping_received_at=(\S+) ping_to_eta_ms=([\d.]+)")
BURST = re.compile(r"Task tracking\.eta_burst\[[^\]]+\] succeeded")
SWEEP = re.compile(r"Task tracking\.eta_sweep\[[^\]]+\] succeeded in ([\d.]+)s: (\d+)")


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def wait_for_port(host: str, port: int) -> None:
    for _ in range(150):
        try:
            asyncio.run(asyncio.wait_for(asyncio.open_connection(host, port), 1))
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("uvicorn did not start")


def start_processes(args, log_paths: list[Path]) -> list[subprocess.Popen]:
    venv = ROOT / ".venv" / "bin"
    quiet = {**os.environ, "DEBUG": "0", "LOG_LEVEL": "WARNING"}
    server = subprocess.Popen(  # noqa: S603
        [
            str(venv / "uvicorn"),
            "control_tower.asgi:application",
            *("--host", args.host, "--port", str(args.port)),
            *("--workers", str(args.web_workers), "--no-access-log", "--log-level", "warning"),
        ],
        cwd=ROOT,
        env=quiet,
    )
    schedule = Path(tempfile.gettempdir()) / f"eta-latency-beat-{os.getpid()}"
    workers = [
        subprocess.Popen(  # noqa: S603
            [
                str(venv / "celery"),
                *("-A", "control_tower", "worker", "-n", f"eta{index}@%h"),
                *(("-B", "-s", str(schedule)) if index == 0 else ()),
                *("--loglevel", "INFO", "--concurrency", str(args.concurrency)),
                *("-Q", settings.CELERY_TASK_DEFAULT_QUEUE),
            ],
            cwd=ROOT,
            env={**os.environ, "DEBUG": "0", "LOG_LEVEL": "INFO"},
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
        )
        for index, log_path in enumerate(log_paths)
    ]
    wait_for_port(args.host, args.port)
    return [server, *workers]


def prepare(organization, routes) -> float:
    """Give the routes their first ETAs just before the load starts, as routes dispatched
    earlier would have them; the run then measures pings on running routes, not the first-ETA
    wave (10 `stop.eta_changed` per route; `--cold` measures that). Those first events belong to
    before the run: they are marked delivered, not relayed (the relay has its own benchmark).
    Also fills the legs shared between processes (the stops are the same every run: one seed).
    Returns the seconds it took."""
    started = time.monotonic()
    with organization_scope(organization):
        loaded = list(
            Route.objects.filter(pk__in=[r.pk for r in routes]).select_related(
                "hub", "organization"
            )
        )
        for start in range(0, len(loaded), BATCH_MAX):
            routes_eta_update(loaded[start : start + BATCH_MAX])
    OutboxEvent.dangerously_unscoped.filter(
        organization_id=organization.pk, delivered_at__isnull=True
    ).update(delivered_at=timezone.now())
    return time.monotonic() - started


def sample_backlogs(organization_id: int, started: float, stop: threading.Event) -> list[dict]:
    """Every 5 s until `stop`: the Celery queue, the organization's due routes and the
    undelivered outbox rows (in a thread: the load runs on the main thread's event loop)."""
    client, samples = sync_redis(timeout_s=2), []
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    while not stop.wait(5):
        samples.append(
            {
                "t_s": time.monotonic() - started,
                "queue": client.llen(queue),
                "due": client.zcard(due_key(organization_id)),
                "outbox": OutboxEvent.dangerously_unscoped.filter(
                    delivered_at__isnull=True, dead_at__isnull=True
                ).count(),
            }
        )
    return samples


def backlog_figures(samples: list[dict]) -> dict:
    figures = {}
    for name in ("queue", "due", "outbox"):
        points = [(s["t_s"], s[name]) for s in samples]
        values = [v for _t, v in points] or [0]
        figures[f"{name}_max"] = max(values)
        figures[f"{name}_end"] = values[-1]
        figures[f"{name}_slope_second_half_per_min"] = round(
            slope_per_min(points[len(points) // 2 :]), 1
        )
        figures[f"{name}_grows"] = grows(points)
    return figures


async def drive(args, tokens, starts, deadline: float) -> dict:
    """Every phone pings once per interval (random phases) until `deadline`, moving ~25 m
    north each time, over a pool of keep-alive connections."""
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(args.connections):
        reader, writer = await asyncio.open_connection(args.host, args.port)
        pool.put_nowait((reader, writer))
    totals = {"sent": 0, "accepted": 0, "errors": 0}
    latencies: list[float] = []

    async def phone(index: int):
        lon, lat = starts[index]
        await asyncio.sleep(random.uniform(0, args.interval))  # noqa: S311
        step = 0
        while time.monotonic() < deadline:
            step += 1
            query = (
                f"id=bench{index}&lat={lat + step * 0.00022:.6f}&lon={lon:.6f}"
                f"&timestamp={int(time.time() * 1000)}&accuracy=5&speed=5"
            )
            raw = (
                f"GET /ingest/osmand/{tokens[index]}/?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            ).encode()
            reader, writer = await pool.get()
            started = time.perf_counter()
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line[15:])
                        for line in head.split(b"\r\n")
                        if line[:15].lower() == b"content-length:"
                    ),
                    0,
                )
                if length:
                    await reader.readexactly(length)
            finally:
                pool.put_nowait((reader, writer))
            latencies.append(time.perf_counter() - started)
            totals["sent"] += 1
            totals["accepted" if head[9:12] == b"200" else "errors"] += 1
            await asyncio.sleep(args.interval)

    await asyncio.gather(*(phone(i) for i in range(len(tokens))))
    while not pool.empty():
        _reader, writer = pool.get_nowait()
        writer.close()
    return {**totals, "latencies": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=60, help="measured seconds")
    parser.add_argument("--warmup", type=int, default=60, help="seconds before measuring")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between pings")
    parser.add_argument("--workers", type=int, default=1, help="Celery workers (the first: beat)")
    parser.add_argument("--concurrency", type=int, default=2, help="processes per Celery worker")
    parser.add_argument("--web-workers", type=int, default=1, help="uvicorn processes")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8761)
    parser.add_argument("--keep-log", action="store_true", help="keep the worker's log")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="start the load on routes without ETAs (default: dispatched routes have theirs)",
    )
    args, _unknown = parser.parse_known_args()  # run_all.py passes its own arguments on

    organization = benchmark_organization("bench-eta", "ETA benchmark")
    with organization_scope(organization):
        routes, tokens = build(organization, args.routes, random.Random(3))
        where = dict(
            DevicePosition.objects.filter(
                device__driver_id__in=[r.driver_id for r in routes]
            ).values_list("device__driver_id", "location")
        )
    # Each phone drives on from where it last reported (a jump would be flagged, not a ping).
    starts = [(where[r.driver_id].x, where[r.driver_id].y) for r in routes]
    app.control.purge()  # nothing left over from an earlier run in this queue
    load_at_start = os.getloadavg()[0]
    log_paths = [
        Path(tempfile.gettempdir()) / f"eta-latency-worker-{os.getpid()}-{index}.log"
        for index in range(args.workers)
    ]
    sync_redis(timeout_s=2).delete(due_key(organization.pk))  # nothing due from an earlier run
    prepared_s = prepare(organization, routes) if not args.cold else 0.0
    processes = start_processes(args, log_paths)
    stop_sampling, sampled = threading.Event(), []
    sampler = threading.Thread(
        target=lambda: sampled.extend(
            sample_backlogs(organization.pk, time.monotonic(), stop_sampling)
        ),
        daemon=True,
    )
    sampler.start()
    try:
        measured_from = timezone.now() + timedelta(seconds=args.warmup)
        deadline = time.monotonic() + args.warmup + args.duration
        traffic = asyncio.run(drive(args, tokens, starts, deadline))
        measured_until = timezone.now()
        stop_sampling.set()
        sampler.join(timeout=10)
        # Let the queue drain: stop when the logs have been quiet for 3 s (at most 30 s).
        size, quiet_since, give_up = -1, time.monotonic(), time.monotonic() + 30
        while time.monotonic() < give_up and time.monotonic() - quiet_since < 3:
            time.sleep(0.5)
            now_size = sum(p.stat().st_size for p in log_paths)
            if now_size != size:
                size, quiet_since = now_size, time.monotonic()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a warm shutdown still busy: enough
                process.kill()
                process.wait()
    log = "".join(p.read_text() for p in log_paths)

    lags, triggered_routes = [], set()
    for route_id, received, lag_ms in LINE.findall(log):
        if measured_from <= datetime.fromisoformat(received) <= measured_until:
            lags.append(float(lag_ms))
            triggered_routes.add(int(route_id))
    sweeps = [(float(seconds), int(count)) for seconds, count in SWEEP.findall(log)]
    with organization_scope(organization):
        last_update = Stop.objects.filter(route__in=routes, status="pending").values("route")
        stale = (
            last_update.annotate(oldest=Min("eta_updated_at"))
            .filter(oldest__lt=measured_from)
            .count()
        ) + last_update.annotate(oldest=Min("eta_updated_at")).filter(oldest=None).count()
    duration = (measured_until - measured_from).total_seconds()
    eta_events = OutboxEvent.dangerously_unscoped.filter(
        organization_id=organization.pk,
        type="stop.eta_changed",
        created_at__gte=measured_from,
        created_at__lte=measured_until,
    ).count()
    ingest = traffic["latencies"]
    results = {
        "routes": args.routes,
        "stops_per_route": 10,
        "ping_interval_s": args.interval,
        "debounce_s": settings.ETA_DEBOUNCE_S,
        "measured_s": round(duration, 1),
        "warmup_s": args.warmup,
        "started_with_etas": not args.cold,
        "prepare_s": round(prepared_s, 1),
        "ingest_path": "HTTP OsmAnd GET -> uvicorn fast path",
        "uvicorn_workers": args.web_workers,
        "celery_workers": args.workers,
        "celery_worker_concurrency": args.concurrency,
        "pings_sent": traffic["sent"],
        "pings_accepted": traffic["accepted"],
        "ping_errors": traffic["errors"],
        "pings_per_s": round(traffic["sent"] / (args.warmup + args.duration), 1),
        "ingest_p50_ms": round(percentile(ingest, 50) * 1000, 1),
        "ingest_p99_ms": round(percentile(ingest, 99) * 1000, 1),
        "ping_triggered_recomputes": len(lags),
        "ping_triggered_recomputes_per_s": round(len(lags) / duration, 1) if duration else 0,
        "routes_recomputed_by_pings": len(triggered_routes),
        "ping_to_eta_p50_ms": round(percentile(lags, 50), 1),
        "ping_to_eta_p95_ms": round(percentile(lags, 95), 1),
        "ping_to_eta_p99_ms": round(percentile(lags, 99), 1),
        "ping_to_eta_max_ms": round(max(lags), 1) if lags else 0,
        "sweeps": len(sweeps),
        "sweep_recomputes": sum(count for _s, count in sweeps),
        "sweep_max_s": round(max((s for s, _c in sweeps), default=0), 2),
        "routes_without_eta_update_while_measured": stale,
        "eta_bursts": len(BURST.findall(log)),
        "stop_eta_changed_events_while_measured": eta_events,
        "stop_eta_changed_events_per_s": round(eta_events / duration, 1) if duration else 0,
        **{f"backlog_{k}": v for k, v in backlog_figures(sampled).items()},
        "target_ping_to_eta_p95_ms": 2000 if args.routes <= 1000 else 5000,
        "load_avg_1min_at_start": round(load_at_start, 2),
    }
    if args.keep_log:
        print("worker logs:", *log_paths)
    else:
        for log_path in log_paths:
            log_path.unlink()
    # The reference run (1,000 routes, one worker) keeps the plain name; others their own.
    reference = args.routes == 1000 and args.workers == 1
    write_results(
        "eta_latency" if reference else f"eta_latency_{args.routes}r_{args.workers}w", results
    )
    park_running_routes(organization)


if __name__ == "__main__":
    main()
