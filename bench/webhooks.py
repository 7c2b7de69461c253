"""Events → signed webhook deliveries per second to a local receiver, with one Celery worker.

    .venv/bin/python bench/webhooks.py                        # 6,000 drained + 30 s at 500/s
    .venv/bin/python bench/webhooks.py --backlog 2000 --seconds 10 --rate 300   # a quick look
    .venv/bin/python bench/webhooks.py --with-ingest          # bench/ingest.py at the same time

The receiver runs in its own process (`python -m webhooks.receiver`: an asyncio server
answering 204 that verifies one request in 50 with the reference `standardwebhooks` code, so
signing is checked without the receiver becoming the bottleneck). The events are real outbox
rows (`shipment.status_changed` through `emit_many`, one shipment per event as a day's parcels
are), relayed and dispatched by ONE worker process started here
(`celery -A control_tower worker -P solo -B` by default, so the relay, the dispatcher and beat
share it; `--pool threads --concurrency 4` keeps one process but overlaps them).

Four figures:
0. the relay alone, in this process (`relay_alone_events_per_s`): a backlog of events through
   every registered durable subscriber, each handler timed (`relay_handler_<name>_ms_per_event`,
   `relay_own_ms_per_event` for the rest: claim, savepoints, receipts, marks);
1. dispatcher alone (`webhook_dispatch_deliveries_per_s`): a backlog of deliveries already
   fanned out (the relay is run in this process first), then the worker drains it, timed from
   its first arrival to its last;
2. relay + dispatcher (`webhook_relay_fanout_events_per_s`, `webhook_backlog_deliveries_per_s`):
   the worker is up, a backlog of outbox events commits in one transaction; timed from the
   commit until every delivery row exists, and until every request arrived;
3. sustained (`webhook_sustained_deliveries_per_s`, `event_to_delivery_p50/p99_ms`): events
   emitted at --rate (ten per transaction) for --seconds while the worker runs; throughput =
   events / (first emit → last arrival); latency = arrival minus the emit's commit, over the
   middle three fifths of the events.

Results: printed, and written to bench/results/webhooks.json.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")
os.environ["DEBUG"] = "0"  # as in production: DEBUG keeps every statement

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from control_tower.celery import app  # noqa: E402
from control_tower.events import emit_many, make_event, registry  # noqa: E402
from control_tower.events.models import OutboxEvent  # noqa: E402
from control_tower.events.relay import relay_pending  # noqa: E402
from control_tower.models import Organization  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from webhooks import services  # noqa: E402
from webhooks.models import WebhookDelivery, WebhookEndpoint  # noqa: E402

VERIFY_ONE_IN = 50


class Sink:
    """The receiver: `python -m webhooks.receiver` in its own process (an asyncio server that
    answers 204 and verifies one request in VERIFY_ONE_IN), read back from its arrivals file."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.path = log_dir / "arrivals.txt"
        self.path.touch()
        self.process: subprocess.Popen | None = None
        self.arrivals: dict[str, float] = {}
        self.verified = self.failed_verification = 0
        self._offset = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self, secret: str) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                *("-m", "webhooks.receiver", "--port", str(self.port), "--secret", secret),
                *("--out", str(self.path), "--verify-every", str(VERIFY_ONE_IN)),
            ],
            cwd=ROOT,
            env=_child_env(),
        )
        time.sleep(1)

    def refresh(self) -> int:
        with self.path.open() as lines:
            lines.seek(self._offset)
            chunk = lines.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self._offset += len(complete)
        for line in complete.splitlines():
            event_id, _, at = line.partition(" ")
            if event_id == "verified":
                self.verified += 1
            elif event_id == "failed":
                self.failed_verification += 1
            else:
                self.arrivals.setdefault(event_id, float(at))
        return len(self.arrivals)


def organization_with_endpoint(receiver_url: str):
    organization, _ = Organization.objects.get_or_create(
        slug="bench-webhooks", defaults={"name": "Bench webhooks"}
    )
    with organization_scope(organization):
        WebhookEndpoint.objects.all().delete()  # earlier runs: their deliveries go with them
        OutboxEvent.dangerously_unscoped.filter(organization=organization).delete()
        services.settings_update(allowed_private_hosts=["127.0.0.1"])
        from control_tower.tenancy.actors import Actor

        actor = Actor(organization=organization)
        _endpoint, secret = services.endpoint_create(
            actor=actor,
            name="bench",
            url=receiver_url,
            event_types=["shipment.status_changed"],
        )
    return organization, secret


_next_shipment = [1_000_000]


def emit_events(organization, count: int, sent_at: dict, *, per_transaction: int = 1) -> None:
    """`count` events, `per_transaction` to a transaction (emit_many), one shipment each."""
    for offset in range(0, count, per_transaction):
        events = []
        for _ in range(min(per_transaction, count - offset)):
            _next_shipment[0] += 1
            shipment_id = _next_shipment[0]
            events.append(
                make_event(
                    "shipment.status_changed",
                    organization_id=organization.pk,
                    carrier_id=None,
                    aggregate_id=shipment_id,
                    payload={
                        "id": shipment_id,
                        "reference": f"BENCH-{shipment_id}",
                        "status": "out_for_delivery",
                        "from": "at_hub",
                        "at": timezone.now(),
                    },
                )
            )
        with transaction.atomic():
            emit_many(events)
        committed = time.time()
        for event in events:
            sent_at[str(event.id)] = committed


def _child_env() -> dict:
    # The shared virtualenv's editable install points at another checkout: this one first.
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "DEBUG": "0", "PYTHONPATH": os.pathsep.join([*paths, str(ROOT)])}


def start_worker(log_path: Path, args) -> subprocess.Popen:
    schedule = Path(tempfile.gettempdir()) / f"webhooks-bench-beat-{os.getpid()}"
    return subprocess.Popen(  # noqa: S603
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            *("-A", "control_tower", "worker", "-P", args.pool, "-B", "-s", str(schedule)),
            *("--concurrency", str(args.concurrency)),
            *("--loglevel", "WARNING", "-Q", settings.CELERY_TASK_DEFAULT_QUEUE),
        ],
        cwd=ROOT,
        env=_child_env(),
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_ingest(args, log_dir: Path) -> subprocess.Popen:
    """bench/ingest.py's first scenario (single OsmAnd fixes over uvicorn, 32 keep-alive
    connections), long enough to cover the sustained run, in its own process group: its
    uvicorn child goes with it, and it is stopped before it writes bench/results/ingest.json.
    Returns once its server answers and the load is on."""
    log = log_dir / "ingest.log"
    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            str(ROOT / "bench" / "ingest.py"),
            *("--duration", str(int(args.seconds) + 120), "--port", str(args.ingest_port)),
        ],
        cwd=ROOT,
        env=_child_env(),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if not wait_until(lambda: "single-fix OsmAnd" in log.read_text(), 120):
        stop_group(process)
        raise SystemExit(f"bench/ingest.py did not start: see {log}")
    time.sleep(3)  # the clients connected and the load is steady
    print(f"  ingest running (pid {process.pid}, log {log})")
    return process


def stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def wait_for_worker() -> None:
    """Until the worker answers a ping (a busy solo worker may not: then 10 s of patience)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    print("  (the worker did not answer a ping; going on)")


def drain(receiver, expected: int, worker_log: Path, timeout: float, args) -> tuple[float, int]:
    """Start the worker, wait until `expected` events arrived; (seconds, arrived)."""
    before = len(receiver.arrivals)
    started = time.monotonic()
    worker = start_worker(worker_log, args)
    try:
        # The first arrival marks the start (the worker's own start-up is not dispatching).
        wait_until(lambda: receiver.refresh() > before, 60)
        first = time.monotonic()
        wait_until(lambda: receiver.refresh() >= before + expected, timeout)
        done = time.monotonic()
    finally:
        stop(worker)
    print(f"  worker start-up {first - started:.1f} s")
    return done - first, len(receiver.arrivals) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backlog", type=int, default=6000, help="events of figures 1 and 2")
    parser.add_argument("--rate", type=float, default=500, help="events/s of figure 3")
    parser.add_argument("--seconds", type=float, default=30, help="duration of figure 3")
    parser.add_argument("--pool", default="solo", help="the worker's pool (solo, threads)")
    parser.add_argument("--concurrency", type=int, default=1, help="threads of a threads pool")
    parser.add_argument("--port", type=int, default=8199, help="the receiver's port")
    parser.add_argument("--with-ingest", action="store_true", help="run bench/ingest.py too")
    parser.add_argument("--ingest-port", type=int, default=8198, help="ingest's uvicorn port")
    parser.add_argument("--skip-backlog", action="store_true", help="only the sustained figure (3)")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="webhooks-bench-"))

    receiver = Sink(args.port, log_dir)
    organization, secret = organization_with_endpoint(receiver.url)
    receiver.start(secret)
    try:
        measure(args, receiver, organization, log_dir)
    finally:
        receiver.process.terminate()


def measure_relay_alone(organization, count: int, results: dict) -> None:
    """Figure 0: the relay in this process (no worker, no dispatcher) over `count` events,
    with the subscribers this process registers, each timed: what bounds the chain."""
    spent: dict[str, float] = defaultdict(float)
    originals = dict(registry._subscribers)

    def timed(subscriber):
        def handler(event):
            started = time.perf_counter()
            try:
                subscriber.handler(event)
            finally:
                spent[subscriber.name] += time.perf_counter() - started

        return replace(subscriber, handler=handler)

    registry._subscribers.update({name: timed(s) for name, s in originals.items()})
    try:
        emitted: dict[str, float] = {}
        emit_events(organization, count, emitted, per_transaction=100)
        started = time.perf_counter()
        delivered = relay_pending(budget_s=600)
        seconds = time.perf_counter() - started
    finally:
        registry._subscribers.update(originals)
    with organization_scope(organization):  # not sent: figure 1 has its own backlog
        WebhookDelivery.objects.filter(event_id__in=list(emitted)).delete()
    results["relay_alone_events"] = delivered
    results["relay_alone_events_per_s"] = round(delivered / seconds, 1)
    for name, total in sorted(spent.items()):
        results[f"relay_handler_{name}_ms_per_event"] = round(total / delivered * 1000, 3)
    own = seconds - sum(spent.values())
    results["relay_own_ms_per_event"] = round(own / delivered * 1000, 3)


def measure_backlogs(args, receiver, organization, log_dir: Path, results: dict) -> None:
    """Figures 1 and 2."""
    sent_at: dict[str, float] = {}

    # 1. The dispatcher alone: deliveries already fanned out.
    print(f"1. dispatcher alone: {args.backlog} deliveries")
    emit_events(organization, args.backlog, sent_at, per_transaction=50)
    relay_pending(budget_s=600)
    seconds, arrived = drain(receiver, args.backlog, log_dir / "worker1.log", 300, args)
    results["webhook_dispatch_backlog"] = args.backlog
    results["webhook_dispatch_deliveries_per_s"] = round(arrived / seconds, 1)

    # 2. Relay + dispatcher: the worker is up, then a backlog of events commits at once.
    print(f"2. relay + dispatcher: {args.backlog} outbox events in one commit")
    worker = start_worker(log_dir / "worker2.log", args)
    try:
        wait_for_worker()
        before = receiver.refresh()
        with organization_scope(organization):
            made_before = WebhookDelivery.objects.count()
        backlog_sent: dict[str, float] = {}
        emit_events(organization, args.backlog, backlog_sent, per_transaction=args.backlog)
        committed = time.time()
        with organization_scope(organization):
            fanned_out = committed

            def all_fanned_out() -> bool:
                nonlocal fanned_out
                done = WebhookDelivery.objects.count() >= made_before + args.backlog
                fanned_out = time.time()
                return done

            wait_until(all_fanned_out, 600)
        wait_until(lambda: receiver.refresh() >= before + args.backlog, 600)
        last = max(receiver.arrivals.get(i, committed) for i in backlog_sent)
    finally:
        stop(worker)
    results["webhook_relay_fanout_events_per_s"] = round(args.backlog / (fanned_out - committed), 1)
    results["webhook_backlog_deliveries_per_s"] = round(args.backlog / (last - committed), 1)


def measure(args, receiver, organization, log_dir: Path) -> None:
    results: dict = {
        "webhook_endpoints": 1,
        "celery_worker_processes": 1,
        "celery_worker_pool": f"{args.pool} x{args.concurrency}",
    }
    if not args.skip_backlog:
        print(f"0. relay alone, in this process: {args.backlog} events")
        measure_relay_alone(organization, args.backlog, results)
        measure_backlogs(args, receiver, organization, log_dir, results)

    # 3. Sustained: events at --rate while the worker runs.
    print(f"3. sustained: {args.rate:.0f} events/s for {args.seconds:.0f} s")
    ingest = start_ingest(args, log_dir) if args.with_ingest else None
    receiver_before = dict(receiver.arrivals)
    worker = start_worker(log_dir / "worker3.log", args)
    wait_for_worker()
    sustained_sent: dict[str, float] = {}
    emitted = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < args.seconds:
        due = int(elapsed * args.rate) - emitted
        if due > 0:
            emit_events(organization, due, sustained_sent, per_transaction=10)
            emitted += due
        else:
            time.sleep(0.002)
    emit_seconds = time.monotonic() - started
    # Measured window: the middle of the run (the first and last fifth are ramp and tail).
    ids = list(sustained_sent)
    window = ids[len(ids) // 5 : len(ids) * 4 // 5]
    wait_until(lambda: receiver.refresh() >= len(receiver_before) + len(ids), 120)
    stop(worker)
    if ingest is not None:
        stop_group(ingest)
    latencies = sorted(
        (receiver.arrivals[i] - sustained_sent[i]) * 1000 for i in window if i in receiver.arrivals
    )
    results["webhook_sustained_offered_events_per_s"] = round(emitted / emit_seconds, 1)
    # Throughput over the whole run: every event, from the first emit to the last arrival.
    last_arrival = max((receiver.arrivals[i] for i in ids if i in receiver.arrivals), default=0)
    first_sent = min(sustained_sent.values())
    results["webhook_sustained_deliveries_per_s"] = round(
        sum(1 for i in ids if i in receiver.arrivals) / (last_arrival - first_sent), 1
    )
    results["webhook_sustained_delivered_share"] = round(
        sum(1 for i in ids if i in receiver.arrivals) / len(ids), 4
    )
    if latencies:
        results["event_to_delivery_p50_ms"] = round(statistics.median(latencies))
        results["event_to_delivery_p99_ms"] = round(latencies[int(len(latencies) * 0.99) - 1])
        results["event_to_delivery_max_ms"] = round(latencies[-1])
    results["with_ingest"] = bool(args.with_ingest)
    results["signatures_verified_sample"] = receiver.verified
    results["signatures_failed_sample"] = receiver.failed_verification
    with organization_scope(organization):
        statuses = dict(
            WebhookDelivery.objects.values_list("status").annotate(n=django.db.models.Count("id"))
        )
    results["webhook_deliveries_not_succeeded"] = sum(
        n for status, n in statuses.items() if status != "succeeded"
    )
    write_results("webhooks", results)


if __name__ == "__main__":
    main()
