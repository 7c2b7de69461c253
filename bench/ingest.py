"""Ingest benchmark: the real ASGI server (uvicorn) over loopback, concurrent keep-alive
clients, then the rows counted in PostgreSQL.

    .venv/bin/python bench/ingest.py                 # 60 s per scenario (what PERFORMANCE.md uses)
    .venv/bin/python bench/ingest.py --duration 10   # a quick look
    .venv/bin/python bench/ingest.py --duration 10 --only batches   # floors + one scenario

Scenarios:
1. single-fix OsmAnd requests (`GET /ingest/osmand/<token>/?...`, what Traccar Client sends):
   requests/s, p50/p99 latency;
2. native batches of 100 and of 1,000 fixes (`POST /api/v1/ingest/pings`): pings/s;
3. the storage layer alone (`pings_ingest` in-process, batches of 1,000): rows/s. Since issue
   19 the inputs (Fix objects, 20 devices per process, tracks starting three hours ago so the
   rows land in today's and yesterday's partitions like live traffic) are built before the
   clock starts, and the layer runs in as many processes as the COPY floor uses connections
   (one per core; `--storage-processes`), each storing `--storage-batches` batches: rows/s =
   all rows / the slowest process's time. The same in one process is reported too
   (`storage_batch_1000_one_process_rows_per_s`). Before issue 19 it was one process building
   each batch inside the timed loop, on one device, for min(duration, 30) s;
and first, in the same run, what PostgreSQL itself does with ping-shaped rows on this machine
(bench/ingest_floor.py: the COPY floor and the one-row-per-transaction commit floor), with the
ratios issue 19 sets targets for: batches of 1,000 and the storage layer against the COPY
floor (≥ 0.40, ≥ 0.60), single fixes against the commit floor (≥ 0.20).
Every acknowledged (2xx) fix has a unique key, so after each scenario the stored rows must
equal the acknowledged fixes: the script reports `lost` (it must be 0).

The client is a minimal asyncio HTTP/1.1 keep-alive client (a few microseconds per request) so
that the load generator takes as little as possible of the machine's CPU from the server.
Results: printed, and written to bench/results/ingest.json (flat keys, unit in the name).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
# A benchmark signs nothing worth protecting; production settings refuse to start without a key.
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from bench.ingest_floor import commit_floor, copy_floor  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from carriers.models import Carrier, Device  # noqa: E402
from carriers.services import device_create  # noqa: E402
from control_tower.models import Organization  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from tracking.ingest.fixes import Fix  # noqa: E402
from tracking.ingest.pings import pings_ingest  # noqa: E402

BENCH_SLUG = "bench-ingest"


# ---------------------------------------------------------------------------------------------
# Fixture data: one organization, many devices, each driving its own straight line
# ---------------------------------------------------------------------------------------------


def prepare(devices: int) -> tuple[Organization, list[tuple[Device, str]]]:
    organization = Organization.objects.filter(slug=BENCH_SLUG).first()
    if organization is None:
        organization = Organization.objects.create(
            slug=BENCH_SLUG, name="Ingest benchmark", ping_retention_days=3650
        )
    with organization_scope(organization):
        carrier, _ = Carrier.objects.get_or_create(
            organization=organization, code="bench", defaults={"name": "Bench", "kind": "gig"}
        )
        # Fresh devices each run: tokens are only known when issued, and clean tracks keep
        # every fix unflagged and unique.
        made = [
            device_create(
                organization=organization, carrier=carrier, name=f"bench {i}", kind="driver_app"
            )
            for i in range(devices)
        ]
    return organization, made


class Track:
    """A device moving north at ~10 m/s, one fix per second of simulated time."""

    def __init__(self, start: datetime, index: int):
        self.time = start
        self.lat = -29.9 + (index % 100) * 0.001
        self.lon = -71.25 + (index // 100) * 0.001

    def next(self) -> tuple[datetime, float, float]:
        self.time += timedelta(seconds=1)
        self.lat += 0.00009
        return self.time, self.lat, self.lon


# ---------------------------------------------------------------------------------------------
# A tiny keep-alive HTTP/1.1 client
# ---------------------------------------------------------------------------------------------


class Connection:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status


def get_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def post_request(path: str, body: bytes, token: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Device {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def drive(host, port, workers, duration, make_request):
    """`workers` connections, each sending `make_request(worker)` → (bytes, fixes) in a loop
    for `duration` seconds. Returns (acknowledged fixes, requests, errors, latencies)."""
    stop = time.perf_counter() + duration
    latencies: list[float] = []
    totals = {"fixes": 0, "requests": 0, "errors": 0}

    async def worker(number: int):
        conn = Connection(host, port)
        await conn.open()
        while time.perf_counter() < stop:
            raw, fixes = make_request(number)
            started = time.perf_counter()
            status = await conn.request(raw)
            latencies.append(time.perf_counter() - started)
            totals["requests"] += 1
            if 200 <= status < 300:
                totals["fixes"] += fixes
            else:
                totals["errors"] += 1
        conn.writer.close()

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return totals, latencies


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 1 else values[0]


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------


def count_rows(organization, since: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracking_ping WHERE organization_id = %s AND received_at >= %s",
            [organization.pk, since],
        )
        return cursor.fetchone()[0]


def scenario_osmand(args, organization, devices) -> dict:
    start = datetime.now(UTC) - timedelta(days=2)
    tracks = [Track(start, i) for i in range(len(devices))]
    per_worker = max(1, len(devices) // args.connections)

    def make(worker: int):
        index = worker * per_worker + (make.counter[worker] % per_worker)
        make.counter[worker] += 1
        when, lat, lon = tracks[index].next()
        token = devices[index][1]
        path = (
            f"/ingest/osmand/{token}/?id={index}&lat={lat:.6f}&lon={lon:.6f}"
            f"&timestamp={int(when.timestamp())}&speed=19.4&bearing=0&accuracy=6&batt=80"
        )
        return get_request(path), 1

    make.counter = [0] * args.connections
    since = datetime.now(UTC)
    totals, latencies = asyncio.run(
        drive(args.host, args.port, args.connections, args.duration, make)
    )
    stored = count_rows(organization, since)
    return {
        "osmand_single_fix_req_per_s": round(totals["requests"] / args.duration),
        "osmand_single_fix_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "osmand_single_fix_p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "osmand_single_fix_errors": totals["errors"],
        "osmand_single_fix_acknowledged": totals["fixes"],
        "osmand_single_fix_lost": totals["fixes"] - stored,
    }


def scenario_batches(args, organization, devices, size: int) -> dict:
    start = datetime.now(UTC) - timedelta(days=1)
    tracks = [Track(start, i) for i in range(len(devices))]
    counter = [0]

    def make(worker: int):
        index = counter[0] % len(devices)
        counter[0] += 1
        fixes = []
        for _ in range(size):
            when, lat, lon = tracks[index].next()
            fixes.append(
                {
                    "time": when.isoformat(),
                    "lat": round(lat, 6),
                    "lon": lon,
                    "accuracy": 6,
                    "speed": 10.0,
                }
            )
        body = json.dumps(fixes).encode()
        return post_request("/api/v1/ingest/pings", body, devices[index][1]), size

    since = datetime.now(UTC)
    totals, latencies = asyncio.run(
        drive(args.host, args.port, args.batch_connections, args.duration, make)
    )
    stored = count_rows(organization, since)
    return {
        f"batch_{size}_pings_per_s": round(totals["fixes"] / args.duration),
        f"batch_{size}_req_per_s": round(totals["requests"] / args.duration, 1),
        f"batch_{size}_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        f"batch_{size}_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        f"batch_{size}_errors": totals["errors"],
        f"batch_{size}_lost": totals["fixes"] - stored,
    }


STORAGE_BATCH = 1000
STORAGE_DEVICES = 20  # per process: each device's track spans a couple of hours, not days


def storage_batches(first_device: int, batches: int) -> list[tuple[int, list[Fix]]]:
    """The storage scenario's input, built before the clock starts: `batches` batches of
    STORAGE_BATCH fixes, round-robin over STORAGE_DEVICES devices from `first_device`, each
    device's clean track starting three hours ago (today's and yesterday's daily partitions,
    as live traffic; every fix unique, none flagged). Returns (device index, fixes) pairs."""
    start = datetime.now(UTC) - timedelta(hours=3)
    tracks = {n: Track(start, n) for n in range(first_device, first_device + STORAGE_DEVICES)}
    made = []
    for number in range(batches):
        index = first_device + number % STORAGE_DEVICES
        fixes = []
        for _ in range(STORAGE_BATCH):
            when, lat, lon = tracks[index].next()
            fixes.append(Fix(fix_time=when, lat=lat, lon=lon, accuracy_m=6, speed_mps=10))
        made.append((index, fixes))
    return made


def store_batches(devices: dict, batches) -> tuple[int, float]:
    """(rows stored, seconds) for `pings_ingest` over the prepared batches."""
    rows = 0
    started = time.perf_counter()
    for index, fixes in batches:
        device = devices[index]
        with organization_scope(device.organization):
            rows += pings_ingest(device=device, fixes=fixes, source="native").stored
    return rows, time.perf_counter() - started


def _devices_by_index(ids: dict[int, int]) -> dict:
    found = Device.dangerously_unscoped.select_related("organization").in_bulk(ids.values())
    return {index: found[pk] for index, pk in ids.items()}


def _storage_process(ids, first_device, batches, barrier, results) -> None:
    """One storage process (spawned: its own Django, its own connection)."""
    from django.db import connections

    devices = _devices_by_index(ids)
    prepared = storage_batches(first_device, batches)
    barrier.wait()
    results.put(store_batches(devices, prepared))
    connections.close_all()


def scenario_storage(args, organization, devices) -> dict:
    """The storage layer alone (`pings_ingest`, batches of 1,000), inputs built before the
    clock starts, in as many processes as the COPY floor has connections (one per core), each
    process with its own devices; rows/s = all rows / the slowest process's time. Also the
    same in one process, for comparison with figures before issue 19 (which built the inputs
    inside the timed loop, in one process, on one device)."""
    import multiprocessing

    processes = args.storage_processes or os.cpu_count() or 2
    batches = args.storage_batches
    if len(devices) < (processes + 1) * STORAGE_DEVICES:
        raise SystemExit(f"--devices must be at least {(processes + 1) * STORAGE_DEVICES}")
    ids = {n: device.pk for n, (device, _token) in enumerate(devices)}

    def own(first: int) -> dict:
        return {n: ids[n] for n in range(first, first + STORAGE_DEVICES)}

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(
            target=_storage_process,
            args=(own(n * STORAGE_DEVICES), n * STORAGE_DEVICES, batches, barrier, results),
        )
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    rows = sum(r for r, _ in outcomes)
    slowest = max(s for _, s in outcomes)
    first = processes * STORAGE_DEVICES
    one_rows, one_s = store_batches(_devices_by_index(own(first)), storage_batches(first, batches))
    return {
        "storage_batch_1000_rows_per_s": round(rows / slowest),
        "storage_processes": processes,
        "storage_rows": rows,
        "storage_batch_1000_one_process_rows_per_s": round(one_rows / one_s),
    }


# ---------------------------------------------------------------------------------------------


def start_server(
    args, app: str = "control_tower.asgi:application", env: dict | None = None
) -> subprocess.Popen:
    """uvicorn serving `app` on args.host:args.port with args.workers processes (one worker:
    uvicorn runs in the returned process itself, so its CPU time is that process's)."""
    env = {**os.environ, "DEBUG": "0", "LOG_LEVEL": "WARNING", **(env or {})}
    server = subprocess.Popen(
        [
            # The interpreter running the benchmark: its virtualenv has uvicorn, wherever the
            # checkout is (a worktree has no .venv of its own).
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--workers",
            str(args.workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(100):
        try:
            asyncio.run(asyncio.wait_for(asyncio.open_connection(args.host, args.port), 1))
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("uvicorn did not start")


def ratios(results: dict) -> dict:
    """Each figure against its floor, measured in the same run (issue 19's targets)."""
    copy, commit = results["floor_copy_rows_per_s"], results["floor_commit_rows_per_s"]
    pairs = {
        "batch_1000_vs_copy_floor_ratio": ("batch_1000_pings_per_s", copy),
        "storage_vs_copy_floor_ratio": ("storage_batch_1000_rows_per_s", copy),
        "osmand_single_fix_vs_commit_floor_ratio": ("osmand_single_fix_req_per_s", commit),
    }
    return {  # a scenario left out (--only) has no ratio
        name: round(results[key] / floor, 3)
        for name, (key, floor) in pairs.items()
        if key in results
    }


def scenarios_through_http(args, organization, devices) -> dict:
    results = {}
    server = start_server(args)
    try:
        if args.only in (None, "osmand"):
            print(
                f"single-fix OsmAnd, {args.connections} connections, {args.duration} s …",
                flush=True,
            )
            results.update(scenario_osmand(args, organization, devices))
        for size in (100, 1000) if args.only in (None, "batches") else ():
            print(f"native batches of {size}, {args.batch_connections} connections …", flush=True)
            results.update(scenario_batches(args, organization, devices, size))
    finally:
        server.terminate()
        server.wait(timeout=20)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds per scenario")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--connections", type=int, default=32, help="for single fixes")
    parser.add_argument("--batch-connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument(
        "--storage-processes", type=int, default=0, help="default: one per core, as the floor"
    )
    parser.add_argument(
        "--storage-batches", type=int, default=150, help="batches of 1,000 per process"
    )
    parser.add_argument(
        "--only",
        choices=["storage", "osmand", "batches"],
        help="only the floors and this scenario (a quick look; before/after comparisons)",
    )
    args = parser.parse_args()

    organization, devices = prepare(args.devices)
    results: dict = {}
    floor_s = min(args.duration, 10)
    print(f"floors: COPY and one row per transaction, {floor_s} s each …", flush=True)
    results.update(copy_floor(floor_s))
    results.update(commit_floor(floor_s))
    if args.only != "storage":
        results.update(scenarios_through_http(args, organization, devices))
    if args.only in (None, "storage"):
        print("storage layer alone …", flush=True)
        results.update(scenario_storage(args, organization, devices))
    results.update(ratios(results))
    results.update(
        {
            "duration_s": args.duration,
            "uvicorn_workers": args.workers,
            "devices": args.devices,
        }
    )
    # A partial run (--only) must not replace the full run's figures.
    write_results(f"ingest_only_{args.only}" if args.only else "ingest", results)


if __name__ == "__main__":
    main()
