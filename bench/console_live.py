"""Dispatcher console, live: 2,000 vehicles pinging once every 5 s (400 pings/s) through the
public OsmAnd endpoint of a real uvicorn serving control_tower.asgi:application, with 20
dispatcher websockets connected; then the snapshot endpoint for those 2,000 vehicles.

    .venv/bin/python bench/console_live.py                  # 60 s of load (PERFORMANCE.md)
    .venv/bin/python bench/console_live.py --duration 15    # a quick look

Latency is measured from the moment the ping request is written on the client's socket (the
send time: the fast path publishes before it answers, so the delta can beat the 2xx) to the
moment the matching position (an item of a `vehicles.moved` batch) arrives on a websocket, for
every socket. A ping with no
matching message on a socket by the end counts as lost; `seq` gaps and out-of-order numbers are
counted per socket. Every vehicle pings once per 5 s, above the 1 s coalescing window, so every
ping must come through (no message is legitimately coalesced away).

`server_cpu_ms_per_ping` (the server's CPU time over the load, from /proc, per accepted ping)
is the figure to compare on a shared machine, where latency mostly measures the neighbours.
`--no-ws-deflate` serves the sockets without permessage-deflate (on by default in uvicorn and
asked for by browsers and the `websockets` client): with it, every socket compresses every
frame on its own.

Results: printed, and written to bench/results/console_live.json (flat keys, unit in the name).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
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

import websockets  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.gis.geos import LineString, Point  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.ingest import percentile, start_server  # noqa: E402
from bench.paced_pings import paced_osmand_pings  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from bench.world import park_running_routes  # noqa: E402
from carriers.device_auth import DEVICE_TOKEN_KIND  # noqa: E402
from carriers.models import Carrier, Device, Driver, Vehicle  # noqa: E402
from control_tower.models import Membership, Organization  # noqa: E402
from control_tower.redis_clients import sync_redis  # noqa: E402
from control_tower.tenancy.roles import Role  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from control_tower.tenancy.secrets import issue_secret  # noqa: E402
from tracking.models import Hub, Route, Stop  # noqa: E402

BENCH_SLUG = "bench-console"
PERIOD_S = 5.0
BENCH_QUEUE = "bench-console"
STOPS_PER_ROUTE = 10


# ---------------------------------------------------------------------------------------------
# Fixture data: one organization, N vehicles each with a tracker and a route today
# ---------------------------------------------------------------------------------------------


def ensure_dispatcher() -> tuple[Organization, object]:
    """The benchmark organization and its dispatcher (created once)."""
    organization, _ = Organization.objects.get_or_create(
        slug=BENCH_SLUG, defaults={"name": "Console benchmark", "time_zone": "America/Santiago"}
    )
    user, _ = get_user_model().objects.get_or_create(
        username="dispatcher@bench-console.example.com",
        defaults={"email": "dispatcher@bench-console.example.com"},
    )
    with organization_scope(organization):
        Membership.objects.get_or_create(
            organization=organization, user=user, defaults={"role": Role.DISPATCHER}
        )
    return organization, user


def prepare(vehicles: int) -> tuple[Organization, list[tuple[int, str]], object]:
    """Create what is missing (once), then issue fresh device tokens (only known when issued).
    Returns the organization, [(vehicle id, token)] and the dispatcher user."""
    organization, user = ensure_dispatcher()
    today = timezone.now().astimezone(organization.zone).date()
    with organization_scope(organization):
        carrier, _ = Carrier.objects.get_or_create(
            organization=organization, code="bench", defaults={"name": "Bench", "kind": "gig"}
        )
        hub, _ = Hub.objects.get_or_create(
            organization=organization,
            code="bench-hub",
            defaults={"name": "Bench hub", "location": Point(-71.25, -29.9, srid=4326)},
        )
        have = Vehicle.objects.count()
        if have < vehicles:
            print(f"creating {vehicles - have} vehicles, devices, drivers …", flush=True)
            new = Vehicle.objects.bulk_create(
                Vehicle(organization=organization, carrier=carrier, plate=f"BC-{i:05d}")
                for i in range(have, vehicles)
            )
            Driver.objects.bulk_create(
                Driver(organization=organization, carrier=carrier, name=f"Driver {v.plate}")
                for v in new
            )
            Device.objects.bulk_create(
                Device(
                    organization=organization,
                    carrier=carrier,
                    vehicle=v,
                    name=f"tracker {v.plate}",
                    kind="gps_tracker",
                    token_prefix=f"x{v.pk:015d}"[:16],
                    token_hash="0" * 64,
                )
                for v in new
            )
        fleet = list(Vehicle.objects.order_by("pk")[:vehicles])
        ensure_routes(organization, carrier, hub, fleet, today)
        devices = {d.vehicle_id: d for d in Device.objects.filter(vehicle__in=fleet)}
        issued = []
        for vehicle in fleet:
            device = devices[vehicle.pk]
            secret = issue_secret(DEVICE_TOKEN_KIND)
            device.token_prefix, device.token_hash = secret.prefix, secret.digest
            issued.append((vehicle.pk, secret.raw))
        Device.objects.bulk_update(devices.values(), ["token_prefix", "token_hash"], 1000)
    return organization, issued, user


def ensure_routes(organization, carrier, hub, fleet, today: date) -> None:
    # The previous run parked them (bench/world.py): running again for this run.
    Route.objects.filter(date=today).update(status="in_progress")
    routed = set(Route.objects.filter(date=today).values_list("vehicle_id", flat=True))
    if all(vehicle.pk in routed for vehicle in fleet):
        return
    # A larger fleet than the last run's: routes for the new vehicles only (codes by position).
    print(f"creating routes of {STOPS_PER_ROUTE} stops for {today} …", flush=True)
    drivers = list(Driver.objects.order_by("pk")[: len(fleet)])
    now = timezone.now()
    routes = Route.objects.bulk_create(
        Route(
            organization=organization,
            date=today,
            code=f"B{i:05d}",
            hub=hub,
            carrier=carrier,
            vehicle=vehicle,
            driver=drivers[i],
            status="in_progress",
            planned_geometry=LineString(
                [(-71.25 + k * 0.001, -29.9 - (i % 100) * 0.001) for k in range(40)]
            ),
        )
        for i, vehicle in enumerate(fleet)
        if vehicle.pk not in routed
    )
    Stop.objects.bulk_create(
        (
            Stop(
                organization=organization,
                route=route,
                sequence=s + 1,
                location=Point(-71.25 + s * 0.004, -29.9, srid=4326),
                address=f"Calle {s}",
                window_end=now + timedelta(minutes=30 * s),
                eta=now + timedelta(minutes=35 * s),
                eta_latest=now + timedelta(minutes=40 * s),
                status="completed" if s < 3 else "pending",
            )
            for route in routes
            for s in range(STOPS_PER_ROUTE)
        ),
        batch_size=5000,
    )


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    session = client.session
    session["organization_slug"] = BENCH_SLUG
    session.save()
    return f"sessionid={session.session_key}"


# ---------------------------------------------------------------------------------------------
# The live scenario
# ---------------------------------------------------------------------------------------------


class Sent:
    """When each ping (vehicle, latitude) left the client."""

    def __init__(self) -> None:
        self.at: dict[tuple[int, float], float] = {}


async def listen(url, cookie, origin, sent: Sent, results: dict, stop: asyncio.Event):
    latencies, gaps, disorder, received, late, frames = [], 0, 0, 0, 0, 0
    seen: set = set()
    async with websockets.connect(
        url, additional_headers={"Cookie": cookie, "Origin": origin}, max_queue=None
    ) as socket:
        hello = json.loads(await socket.recv())
        last_seq = hello["data"]["seq"]
        results["ready"] += 1
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(socket.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.perf_counter()
            message = json.loads(raw)
            seq = message.get("seq")
            if seq is not None:
                if seq > last_seq + 1:
                    gaps += seq - last_seq - 1
                elif seq <= last_seq:
                    disorder += 1
                last_seq = max(last_seq, seq)
            if message["type"] == "vehicles.moved":  # a batch (docs/REALTIME.md)
                items = message["data"]["items"]
            elif message["type"] == "vehicle.moved":  # one vehicle (before batching)
                items = [message["data"]]
            else:
                continue
            frames += 1
            for item in items:
                received += 1
                key = (item["id"], round(item["lat"], 6))
                started = sent.at.get(key)
                if started is None:
                    late += 1  # a ping sent before the measurement (warm-up)
                    continue
                seen.add(key)
                latencies.append(now - started)
    results["sockets"].append(
        {
            "latencies": latencies,
            "gaps": gaps,
            "disorder": disorder,
            "received": received,
            "frames": frames,
            "seen": seen,
            "unmatched": late,
        }
    )


async def ping_load(args, devices, sent: Sent, measure_from: float, stop_at: float) -> dict:
    """Each vehicle pings every PERIOD_S, the fleet spread evenly over the period."""

    def record(vehicle_id, lat, sent_at):
        sent.at[(vehicle_id, lat)] = sent_at

    return await paced_osmand_pings(
        host=args.host,
        port=args.port,
        connections=args.connections,
        devices=devices,
        period_s=PERIOD_S,
        base_lat={vid: -29.9 - (i % 100) * 0.001 for i, (vid, _t) in enumerate(devices)},
        measure_from=measure_from,
        stop_at=stop_at,
        on_sent=record,
    )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its direct children (uvicorn's workers), from
    /proc: on a machine shared with other work, CPU per ping is steadier than latency."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    total = 0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


async def live(args, devices, cookie, server_pid: int) -> dict:
    url = f"ws://{args.host}:{args.port}/ws/v1/events/"
    origin = f"http://{args.host}:{args.port}"
    sent, stop = Sent(), asyncio.Event()
    results: dict = {"ready": 0, "sockets": []}
    listeners = [
        asyncio.create_task(listen(url, cookie, origin, sent, results, stop))
        for _ in range(args.sockets)
    ]
    deadline = time.perf_counter() + 60  # a socket that never says hello fails the run
    while results["ready"] < args.sockets:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {results['ready']} of {args.sockets} sockets said hello")
        await asyncio.sleep(0.05)
        for task in listeners:
            if task.done() and task.exception():
                raise task.exception()
    now = time.perf_counter()
    measure_from = now + args.warmup
    cpu_before = cpu_seconds(server_pid)
    totals = await ping_load(args, devices, sent, measure_from, measure_from + args.duration)
    await asyncio.sleep(3)  # let the last deltas arrive
    server_cpu = cpu_seconds(server_pid) - cpu_before
    stop.set()
    await asyncio.gather(*listeners)

    expected = set(sent.at)
    latencies = [x for s in results["sockets"] for x in s["latencies"]]
    lost = sum(len(expected - s["seen"]) for s in results["sockets"])
    return {
        "vehicles": len(devices),
        "ping_period_s": PERIOD_S,
        "pings_per_s_target": round(len(devices) / PERIOD_S),
        "pings_per_s_sent": round(totals["ok"] / (args.warmup + args.duration), 1),
        "pings_accepted": totals["ok"],
        "ping_errors": totals["errors"],
        "pings_measured": len(expected),
        "websockets": args.sockets,
        "delta_latency_from": "ping request sent",
        "delta_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "delta_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "delta_max_ms": round(max(latencies, default=0) * 1000, 1),
        "messages_received": sum(s["received"] for s in results["sockets"]),
        "position_frames_received": sum(s["frames"] for s in results["sockets"]),
        "positions_per_frame": round(
            sum(s["received"] for s in results["sockets"])
            / max(1, sum(s["frames"] for s in results["sockets"])),
            1,
        ),
        "messages_expected": len(expected) * args.sockets,
        "messages_lost": lost,
        "seq_gaps": sum(s["gaps"] for s in results["sockets"]),
        "seq_out_of_order": sum(s["disorder"] for s in results["sockets"]),
        "resyncs": sum(1 for s in results["sockets"] if s["gaps"]),
        "ping_ack_p50_ms": round(percentile(totals["acks"], 50) * 1000, 1),
        "ping_ack_p99_ms": round(percentile(totals["acks"], 99) * 1000, 1),
        # Pings and their deltas to every socket, warm-up and drain included.
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_ms_per_ping": round(server_cpu * 1000 / max(1, totals["ok"]), 3),
        "load_duration_s": args.duration,
        "warmup_s": args.warmup,
    }


# ---------------------------------------------------------------------------------------------
# The snapshot
# ---------------------------------------------------------------------------------------------


def snapshot(args, cookie_value: str) -> dict:
    client = Client(HTTP_ACCEPT_ENCODING="gzip")
    client.cookies["sessionid"] = cookie_value.split("=", 1)[1]
    timings, raw_size, gzip_size, queries = [], 0, 0, 0
    client.get("/api/v1/console/snapshot/")  # warm caches and connections
    for _ in range(args.snapshots):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get("/api/v1/console/snapshot/")
            timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content[:300]
        queries = len(captured)
        body = response.content
        gzip_size = len(body) if response.get("Content-Encoding") == "gzip" else 0
        raw = gzip.decompress(body) if gzip_size else body
        raw_size = len(raw)
        gzip_size = gzip_size or len(gzip.compress(raw))
    data = json.loads(raw)
    return {
        "snapshot_vehicles": len(data["vehicles"]),
        "snapshot_routes": len(data["routes"]),
        "snapshot_p50_ms": round(percentile(timings, 50) * 1000, 1),
        "snapshot_p90_ms": round(percentile(timings, 90) * 1000, 1),
        "snapshot_calls": args.snapshots,
        "snapshot_raw_kb": round(raw_size / 1024, 1),
        "snapshot_gzip_kb": round(gzip_size / 1024, 1),
        "snapshot_queries": queries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds of measured load")
    parser.add_argument("--warmup", type=int, default=6, help="seconds before measuring")
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--connections", type=int, default=40, help="ping HTTP connections")
    parser.add_argument("--snapshots", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--no-ws-deflate",
        dest="ws_deflate",
        action="store_false",
        help="serve websockets without permessage-deflate (each socket compresses every frame)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098)
    args = parser.parse_args()

    organization, devices, user = prepare(args.vehicles)
    cookie = session_cookie(user)
    connection.close()  # the server gets the database to itself during the load
    # The ETA recomputes the pings trigger go to a queue of their own that no worker reads
    # (this benchmark measures the live path), emptied at the end: a demo's worker on the
    # same Redis never inherits them.
    env = {"CELERY_TASK_DEFAULT_QUEUE": BENCH_QUEUE}
    if not args.ws_deflate:
        # uvicorn reads its options from UVICORN_* variables too: no per-socket compression.
        env["UVICORN_WS_PER_MESSAGE_DEFLATE"] = "false"
    server = start_server(args, env=env)
    try:
        print(
            f"{args.vehicles} vehicles every {PERIOD_S:.0f} s, {args.sockets} websockets, "
            f"{args.duration} s …",
            flush=True,
        )
        results = asyncio.run(live(args, devices, cookie, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"snapshot × {args.snapshots} …", flush=True)
    results.update(snapshot(args, cookie))
    results.update({"uvicorn_workers": args.workers, "measured_on": datetime.now(UTC).date()})
    results["websocket_permessage_deflate"] = args.ws_deflate
    results["measured_on"] = str(results["measured_on"])
    # The reference run (2,000 vehicles, one process) keeps the plain name; others their own.
    reference = args.vehicles == 2000 and args.workers == 1
    write_results(
        "console_live" if reference else f"console_live_{args.vehicles}v_{args.workers}w", results
    )
    park_running_routes(organization)
    sync_redis().delete(BENCH_QUEUE)


if __name__ == "__main__":
    main()
