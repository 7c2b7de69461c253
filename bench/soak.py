"""Soak (issue 18): the platform as production runs it, under mixed load for half an hour, watched
every 30 s for what only time shows: memory that creeps, connections that pile up, a queue that
never drains, errors.

    .venv/bin/python bench/soak.py                   # 30 minutes (docs/RELIABILITY.md)
    .venv/bin/python bench/soak.py --duration 120    # a quick look

The platform, as subprocesses against the environment's database and Redis (DATABASE_URL,
REDIS_URL, CELERY_TASK_DEFAULT_QUEUE, ...), DEBUG off: uvicorn with 2 workers serving
control_tower.asgi:application, a Celery worker (prefork, 2 children) and Celery beat. Every
process it started is stopped at the end, on Ctrl-C and on an exception too.

The load:
- 2,000 vehicles, each pinging every 5 s (400 pings/s) through the public OsmAnd endpoint, on
  2,000 routes of today: bench/paced_pings.py over the fleet bench/console_live.py prepares.
  Not the fleet simulator: it drives routes planned on the road network and sustains ~450
  fixes/s replaying a past day as fast as it can (bench/simulator.py), so 2,000 live vehicles
  on top of its planning is beyond it on this machine; the paced pings are the same requests a
  phone sends. Fix times start an hour in the past: do not start a run while a previous one
  is still pinging (their fixes would be duplicates, counted as lost).
- 20 dispatcher console websockets connected the whole time (messages counted; a disconnect is
  counted and the socket reconnects);
- a trickle of API calls with an API key (--api-rate a second): list shipments, routes, stops,
  alerts and vehicles, create a shipment, scan it in at the hub, report an incident on a route,
  and the dispatcher's console snapshot (session cookie). Any answer other than the expected
  2xx is an error.

Every --sample-every seconds: the resident memory of every platform process, PostgreSQL
connections to the database, the Celery queue length (the broker's list for the default queue),
the outbox backlog, pings sent and stored, errors. At the end, per process RSS start / warm /
end / max and growth after --warmup, and the verdict (bench/soak_watch.py): non-zero exit when
there were errors, lost pings, RSS growth above 10 % after warm-up, or a growing queue.

Results: printed, and written to bench/results/soak.json (flat keys, unit in the name).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import os
import random
import signal
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
# A benchmark signs nothing worth protecting; production settings refuse to start without a key.
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import redis  # noqa: E402
import websockets  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from bench.console_live import prepare, session_cookie  # noqa: E402
from bench.ingest import percentile  # noqa: E402
from bench.paced_pings import paced_osmand_pings  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from bench.soak_platform import Platform  # noqa: E402
from bench.soak_watch import rss_mb, verdict  # noqa: E402
from bench.world import park_running_routes  # noqa: E402
from control_tower import services  # noqa: E402
from control_tower.events.models import UNDELIVERED, OutboxEvent  # noqa: E402
from control_tower.tenancy.actors import Actor  # noqa: E402
from control_tower.tenancy.roles import Role, Scope  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from tracking.models import Route  # noqa: E402

PERIOD_S = 5.0


# ---------------------------------------------------------------------------------------------
# The platform: uvicorn, Celery worker, Celery beat
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The load: pings, console sockets, API calls
# ---------------------------------------------------------------------------------------------


class Tally:
    """Everything the load counts, read by the sampler while it runs."""

    def __init__(self) -> None:
        self.pings_sent = 0
        self.ping_totals: dict = {}
        self.socket_messages = 0
        self.socket_disconnects = 0
        self.socket_seq_gaps = 0
        self.api_calls = 0
        self.api_errors: list[str] = []
        self.api_latencies: list[float] = []
        self.crashes: list[str] = []
        self.since: datetime | None = None


async def pings(args, devices, tally: Tally, stop_at: float) -> None:
    """The fleet's pings until `stop_at`. A platform that answers too slowly makes the paced
    load fall behind and catch up after `stop_at`: stopped 10 s later, counted as a failure."""

    def sent(_vehicle_id, _lat, _at):
        tally.pings_sent += 1

    load = paced_osmand_pings(
        host=args.host,
        port=args.port,
        connections=args.connections,
        devices=devices,
        period_s=PERIOD_S,
        base_lat={vid: -29.9 - (i % 100) * 0.001 for i, (vid, _t) in enumerate(devices)},
        measure_from=time.perf_counter(),
        stop_at=stop_at,
        on_sent=sent,
    )
    try:
        tally.ping_totals = await asyncio.wait_for(load, stop_at - time.perf_counter() + 10)
    except TimeoutError:
        tally.crashes.append(f"ping load fell behind: {tally.pings_sent} sent by the end")
    except (OSError, asyncio.IncompleteReadError) as exc:
        tally.crashes.append(f"ping load: {exc!r}")


async def console_socket(args, cookie: str, tally: Tally, stop: asyncio.Event) -> None:
    """One dispatcher's console: connected until the end, reconnecting after a disconnect."""
    url = f"ws://{args.host}:{args.port}/ws/v1/events/"
    headers = {"Cookie": cookie, "Origin": f"http://{args.host}:{args.port}"}
    while not stop.is_set():
        try:
            async with websockets.connect(url, additional_headers=headers, max_queue=None) as ws:
                last_seq = json.loads(await ws.recv())["data"]["seq"]
                while not stop.is_set():
                    try:
                        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.5))
                    except TimeoutError:
                        continue
                    tally.socket_messages += 1
                    seq = message.get("seq")
                    if seq is not None:
                        tally.socket_seq_gaps += max(0, seq - last_seq - 1)
                        last_seq = max(last_seq, seq)
                return
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            tally.socket_disconnects += 1
            if len(tally.crashes) < 20:
                tally.crashes.append(f"console socket: {exc!r}")
            await asyncio.sleep(1)


class ApiTrickle:
    """A dispatcher's integration at a steady pace: reads, and a few writes that go through the
    same services as production (a shipment, its hub scan, an incident)."""

    def __init__(self, args, api_key: str, cookie: str, route_ids: list[int], run_tag: str):
        self.base = f"http://{args.host}:{args.port}"
        self.period_s = 1.0 / args.api_rate
        self.api = httpx.AsyncClient(
            base_url=self.base, headers={"Authorization": f"Api-Key {api_key}"}, timeout=30
        )
        self.console = httpx.AsyncClient(base_url=self.base, headers={"Cookie": cookie}, timeout=30)
        self.route_ids, self.run_tag = route_ids, run_tag
        self.created = itertools.count(1)
        self.last_barcode: str | None = None

    def calls(self):
        """(client, method, path, json body or None, expected status) in an endless cycle."""
        while True:
            yield self.api, "GET", "/api/v1/shipments/", None, 200
            yield self.api, "GET", "/api/v1/routes/", None, 200
            yield self.api, "POST", "/api/v1/shipments/", self.new_shipment(), 201
            yield self.api, "GET", "/api/v1/stops/", None, 200
            yield self.api, "POST", "/api/v1/ingest/scans", self.hub_scan(), 200
            yield self.api, "GET", "/api/v1/alerts/", None, 200
            yield self.api, "GET", "/api/v1/vehicles/", None, 200
            yield self.api, "POST", "/api/v1/incidents/", self.incident(), 201
            yield self.api, "GET", "/api/v1/shipments/?page_size=5", None, 200
            yield self.console, "GET", "/api/v1/console/snapshot/", None, 200

    def new_shipment(self) -> dict:
        n = next(self.created)
        self.last_barcode = f"SOAK-{self.run_tag}-{n}"
        now = datetime.now(UTC)
        return {
            "reference": self.last_barcode,
            "barcode": self.last_barcode,
            "recipient_name": "Soak",
            "recipient_phone": "+56 9 5555 0000",
            "address_line1": "Av. Francisco de Aguirre 100",
            "city": "La Serena",
            "country_code": "CL",
            "location": {"type": "Point", "coordinates": [-71.25, -29.9]},
            "promised_window_start": (now + timedelta(hours=2)).isoformat(),
            "promised_window_end": (now + timedelta(hours=4)).isoformat(),
        }

    def hub_scan(self) -> dict:
        scan = {"barcode": self.last_barcode, "scan_type": "arrived_at_hub"}
        return {"scans": [{**scan, "occurred_at": datetime.now(UTC).isoformat()}]}

    def incident(self) -> dict:
        return {"route": random.choice(self.route_ids), "kind": "other", "note": "soak"}  # noqa: S311

    async def run(self, tally: Tally, stop_at: float) -> None:
        calls = self.calls()
        next_at = time.perf_counter()
        while time.perf_counter() < stop_at:
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            # A slow answer skips the slots it overran: a steady trickle, never a burst.
            next_at = max(next_at + self.period_s, time.perf_counter())
            client, method, path, body, expected = next(calls)
            started = time.perf_counter()
            try:
                response = await client.request(method, path, json=body)
                status, text = response.status_code, response.text[:200]
            except httpx.HTTPError as exc:
                status, text = 0, repr(exc)
            tally.api_latencies.append(time.perf_counter() - started)
            tally.api_calls += 1
            if status != expected:
                tally.api_errors.append(f"{method} {path} → {status}: {text}")
        await self.api.aclose()
        await self.console.aclose()


# ---------------------------------------------------------------------------------------------
# The samples
# ---------------------------------------------------------------------------------------------


def queue_keys() -> list[str]:
    """The broker's lists of the default queue: kombu keeps one per priority step (the plain
    name is priority 0, the others end in \\x06\\x16<priority>)."""
    name = settings.CELERY_TASK_DEFAULT_QUEUE
    return [name, *(f"{name}\x06\x16{p}" for p in range(1, 10))]


def queue_length(broker: redis.Redis) -> int:
    return sum(broker.llen(key) for key in queue_keys())


def queue_contents(broker: redis.Redis) -> dict[str, int]:
    """Waiting tasks by name (what a growing queue is made of)."""
    names: Counter = Counter()
    for key in queue_keys():
        for raw in broker.lrange(key, 0, -1):
            names[json.loads(raw).get("headers", {}).get("task", "?")] += 1
    return dict(names.most_common(5))


def drain_queue() -> dict[str, int]:
    """Empty the default queue (this environment's own: CELERY_TASK_DEFAULT_QUEUE), returning
    what was in it: a run starts from an empty queue and leaves none behind."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    contents = queue_contents(broker)
    broker.delete(*queue_keys())
    return contents


def pings_stored(organization, since: datetime) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracking_ping WHERE organization_id = %s AND received_at >= %s",
            [organization.pk, since],
        )
        return cursor.fetchone()[0]


def take_sample(platform: Platform, organization, broker, tally: Tally, t_s: float, since):
    """One row (runs in the sampler's own thread: Django's connection stays in that thread)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        db_connections = cursor.fetchone()[0]
    stored = pings_stored(organization, since)
    return {
        "t_s": round(t_s),
        "rss_mb": {role: rss_mb(pid) for role, pid in platform.processes().items()},
        "db_connections": db_connections,
        "celery_queue": queue_length(broker),
        "outbox_backlog": OutboxEvent.dangerously_unscoped.filter(UNDELIVERED).count(),
        "pings_sent": tally.pings_sent,
        "pings_stored": stored,
        "socket_messages": tally.socket_messages,
        "socket_disconnects": tally.socket_disconnects,
        "api_calls": tally.api_calls,
        "errors": len(tally.api_errors) + tally.socket_disconnects + len(tally.crashes),
    }


def print_sample(sample: dict, header: bool) -> None:
    roles = sorted(sample["rss_mb"])
    counters = [
        "db_connections",
        "celery_queue",
        "outbox_backlog",
        "pings_sent",
        "pings_stored",
        "socket_messages",
        "api_calls",
        "errors",
    ]
    if header:
        print("RSS MB: " + ", ".join(f"{n} {r}" for n, r in enumerate(roles)), flush=True)
        names = [
            "t_s",
            *(f"rss{n}" for n in range(len(roles))),
            "db",
            "queue",
            "outbox",
            "sent",
            "stored",
            "ws_msgs",
            "api",
            "errors",
        ]
        print(" ".join(f"{name:>8}" for name in names), flush=True)
    rss = [f"{(sample['rss_mb'][r] or 0):8.1f}" for r in roles]
    values = [f"{sample['t_s']:>8}", *rss, *(f"{sample[c]:>8}" for c in counters)]
    print(" ".join(values), flush=True)


def roles_changed(samples: list[dict]) -> bool:
    """A process came or went (the table's RSS columns change: print the header again)."""
    return len(samples) > 1 and set(samples[-1]["rss_mb"]) != set(samples[-2]["rss_mb"])


def close_database() -> None:
    connection.close()  # resolved in the calling thread: the sampler's own connection


async def sampler(args, platform, organization, tally, started, since, stop_at, samples):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="soak-sampler") as thread:
        while True:
            t_s = time.perf_counter() - started
            sample = await loop.run_in_executor(
                thread, take_sample, platform, organization, broker, tally, t_s, since
            )
            samples.append(sample)
            print_sample(sample, header=len(samples) == 1 or roles_changed(samples))
            if time.perf_counter() + args.sample_every > stop_at + 1:
                break
            await asyncio.sleep(
                max(0.0, started + len(samples) * args.sample_every - time.perf_counter())
            )
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()) + 5)  # the last pings land
        sample = await loop.run_in_executor(
            thread,
            take_sample,
            platform,
            organization,
            broker,
            tally,
            time.perf_counter() - started,
            since,
        )
        samples.append(sample)
        print_sample(sample, header=roles_changed(samples))
        await loop.run_in_executor(thread, close_database)


async def soak(args, platform, organization, devices, cookie, api) -> tuple[Tally, list[dict]]:
    tally, samples, stop = Tally(), [], asyncio.Event()
    since = tally.since = datetime.now(UTC)
    started = time.perf_counter()
    stop_at = started + args.duration
    sockets = [
        asyncio.create_task(console_socket(args, cookie, tally, stop)) for _ in range(args.sockets)
    ]
    load = [
        asyncio.create_task(pings(args, devices, tally, stop_at)),
        asyncio.create_task(api.run(tally, stop_at)),
    ]
    await sampler(args, platform, organization, tally, started, since, stop_at, samples)
    await asyncio.gather(*load)
    stop.set()
    await asyncio.gather(*sockets)
    return tally, samples


# ---------------------------------------------------------------------------------------------


def api_key_for(organization) -> str:
    with organization_scope(organization):
        _key, raw = services.api_key_create(
            actor=Actor(organization=organization, role=Role.OWNER),
            name="soak",
            scopes=list(Scope.values),
        )
    return raw


def ack_ms(totals: dict, q: float) -> float | None:
    acks = totals.get("acks")
    return round(percentile(acks, q) * 1000, 1) if acks else None


def report(
    args, organization, tally: Tally, samples: list[dict], platform: Platform
) -> tuple[dict, list]:
    warmup_s = min(args.warmup, args.duration / 3)
    figures, failures = verdict(samples, warmup_s)
    # A ping load stopped while behind has requests in flight: sent - stored bounds the loss.
    totals = tally.ping_totals or {"ok": tally.pings_sent, "errors": 0}
    stored = pings_stored(organization, tally.since)  # once every answer is in
    log_errors = platform.log_errors()
    errors = (
        len(tally.api_errors)
        + totals["errors"]
        + tally.socket_disconnects
        + len(tally.crashes)
        + len(log_errors)
    )
    results = {
        "duration_s": args.duration,
        "warmup_s": warmup_s,
        "sample_every_s": args.sample_every,
        "vehicles": args.vehicles,
        "ping_period_s": PERIOD_S,
        "pings_sent": tally.pings_sent,
        "pings_accepted": totals["ok"],
        "pings_stored": stored,
        "pings_lost": totals["ok"] - stored,
        "ping_errors": totals["errors"],
        # None when the load was stopped while behind (its answer times are lost with it).
        "ping_ack_p50_ms": ack_ms(totals, 50),
        "ping_ack_p99_ms": ack_ms(totals, 99),
        "pings_per_s_target": round(args.vehicles / PERIOD_S),
        "pings_per_s_sent": round(tally.pings_sent / args.duration, 1),
        "websockets": args.sockets,
        "socket_messages": tally.socket_messages,
        "socket_disconnects": tally.socket_disconnects,
        "socket_seq_gaps": tally.socket_seq_gaps,
        "api_calls": tally.api_calls,
        "api_errors": len(tally.api_errors),
        "api_p50_ms": round(percentile(tally.api_latencies, 50) * 1000, 1),
        "api_p99_ms": round(percentile(tally.api_latencies, 99) * 1000, 1),
        "log_errors": len(log_errors),
        "errors": errors,
        **figures,
        "uvicorn_workers": args.workers,
        "celery_concurrency": args.concurrency,
    }
    if errors:
        failures.append(f"{errors} errors")
    if results["pings_lost"]:
        failures.append(f"{results['pings_lost']} pings acknowledged but not stored")
    if tally.socket_seq_gaps:
        failures.append(f"{tally.socket_seq_gaps} console messages skipped (seq gaps)")
    for line in (tally.crashes + tally.api_errors + log_errors)[:10]:
        print("  error:", line)
    return results, failures


def interrupted(_signum, _frame):
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=1800, help="seconds of load")
    parser.add_argument("--warmup", type=int, default=180, help="RSS growth counts from here")
    parser.add_argument("--sample-every", type=int, default=30, help="seconds")
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--connections", type=int, default=40, help="ping HTTP connections")
    parser.add_argument("--api-rate", type=float, default=3.0, help="API calls a second")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery prefork children")
    parser.add_argument(
        "--eta-debounce-s",
        type=float,
        default=settings.ETA_DEBOUNCE_S,
        help="ETA_DEBOUNCE_S of the platform (default: the settings' own)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8097)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call otherwise

    # SIGTERM (a `kill`, a CI timeout) stops the platform the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, interrupted)
    organization, devices, user = prepare(args.vehicles)
    cookie = session_cookie(user)
    api_key = api_key_for(organization)
    with organization_scope(organization):
        route_ids = list(Route.objects.filter(status="in_progress").values_list("pk", flat=True))
    connection.close()  # the platform gets the database to itself during the load
    run_tag = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    leftover = drain_queue()
    if leftover:
        print(f"emptied the queue {settings.CELERY_TASK_DEFAULT_QUEUE} first: {leftover}")
    platform = Platform(args)
    try:
        platform.start()
        print(
            f"{args.vehicles} vehicles every {PERIOD_S:.0f} s, {args.sockets} console sockets, "
            f"{args.api_rate} API calls/s, {args.duration} s; processes: {platform.processes()}",
            flush=True,
        )
        api = ApiTrickle(args, api_key, cookie, route_ids, run_tag)
        tally, samples = asyncio.run(soak(args, platform, organization, devices, cookie, api))
    finally:
        platform.stop()
    results, failures = report(args, organization, tally, samples, platform)
    results["celery_queue_left_tasks"] = json.dumps(drain_queue())
    results["eta_debounce_s"] = args.eta_debounce_s
    park_running_routes(organization)
    results["passed"] = not failures
    write_results("soak", results)
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
