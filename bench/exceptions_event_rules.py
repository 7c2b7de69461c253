"""What the exceptions app's event rules cost per event: the durable subscribers the outbox relay
runs after each ping → ETA recompute (predicted late on `stop.eta_changed` and
`stop.status_changed`, failed attempt on `stop.status_changed` and `route.changed`, POD far on
`pod.captured`), timed one event at a time.

    .venv/bin/python bench/exceptions_event_rules.py                 # 2,000 routes, 400 replayed
    .venv/bin/python bench/exceptions_event_rules.py --routes 200 --active 50   # a quick look

The world is the console benchmark's fleet size (bench/console_live.py: 2,000 running routes of
10 stops, a phone each with a fresh position; bench/eta.py's `build` on the Coquimbo roads),
with promised windows of which a share cannot be met. On `--active` of those routes the ping →
ETA path runs for real (`route_eta_update`, which writes the ETAs and emits `stop.eta_changed`
for each material move) three times, five minutes apart, with the phone moving in between; one
stop per route is completed with a POD (a few captured far from the address) and one fails
(`stop_complete`, `stop_fail`: `stop.status_changed`). So the events mix first raises,
refreshes of open alerts, clears and no-ops, as a live day does.

Then every outbox row of the organization is handed to its subscribers as the relay does
(`organization_scope` + one transaction per subscriber, then the receipt), and each exceptions
subscriber is timed alone (wall clock, and this process's CPU: the Python side without the
database's), twice: the rule's own work (`event_rules_*`: the handler, up to its
commit) and as relayed (`event_rules_relayed_*`: plus the receipt and the COMMIT, which the
relay pays per subscriber whatever the rule does). Per event: the sum over the exceptions
subscribers it wakes (target: under 5 ms p95). Queries per event too.

The relay runs in the Celery worker after the ETAs are committed, so this is worker time per
event rather than latency added to the ping → stored ETA path; it is measured alone, not under
the console benchmark's 400 pings/s (two cores cannot host both and still say which is which).

Results: printed, and written to bench/results/exceptions_event_rules.json.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")
# As in production: DEBUG logs and formats every statement, a cost the worker does not pay.
os.environ["DEBUG"] = "0"
SAMPLE_EVERY = 10  # one event in ten has its statements counted (and is not timed)

import django  # noqa: E402

django.setup()

from django.contrib.gis.geos import Point  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.eta import build  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from bench.world import benchmark_organization, park_running_routes  # noqa: E402
from carriers.models import Carrier  # noqa: E402
from control_tower.events import catalog, emit  # noqa: E402
from control_tower.events.models import OutboxEvent, OutboxReceipt  # noqa: E402
from control_tower.events.registry import subscribers_for  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from exceptions.models import Alert  # noqa: E402
from tracking.eta.recompute import route_eta_update  # noqa: E402
from tracking.models import (  # noqa: E402
    DevicePosition,
    FailureReason,
    ProofOfDelivery,
    Route,
    Shipment,
    Stop,
    StopShipment,
)
from tracking.services.stops import stop_complete, stop_fail  # noqa: E402

BENCH_SLUG = "bench-exception-events"
ROUNDS = 3  # ETA recomputes per active route, ROUND_MIN apart
ROUND_MIN = 5
TABLES = ("tracking_stop", "tracking_etarevision", "tracking_deviceposition", "exceptions_alert")


def windows(routes, now, rng: random.Random) -> None:
    """Promised windows: one hour each, the n-th stop's ending ~25 min × n from now; one route
    in five is squeezed (its windows end 40 % earlier), so its later stops cannot be met."""
    stops = list(Stop.objects.filter(route__in=routes).only("id", "route_id", "sequence"))
    squeezed = {r.pk for r in routes if rng.random() < 0.2}
    for stop in stops:
        minutes = 25 * stop.sequence * (0.6 if stop.route_id in squeezed else 1.0)
        stop.window_end = now + timedelta(minutes=minutes + rng.uniform(-10, 10))
        stop.window_start = stop.window_end - timedelta(hours=1)
    Stop.objects.bulk_update(stops, ["window_start", "window_end"], batch_size=5000)


def hold(organization) -> None:
    """Lease the new outbox rows to this process: a relay running meanwhile (a worker, an
    evaluation) must not deliver them before they are timed here."""
    OutboxEvent.dangerously_unscoped.filter(
        organization=organization, delivered_at__isnull=True, leased_until__isnull=True
    ).update(leased_until=timezone.now() + timedelta(hours=1))


def replay_day(organization, active, now, rng: random.Random) -> dict:
    """The live path on the active routes: recomputes, the phone moving, a stop done (with its
    POD) and a stop failed per route. Returns how many of each were emitted."""
    carrier = Carrier.objects.get(code="bench")
    stamp = time.strftime("%H%M%S")
    counts = defaultdict(int)
    for round_ in range(ROUNDS):
        at = now + timedelta(minutes=ROUND_MIN * round_)
        # The phones moved (a little, and some not at all: a vehicle stuck makes ETAs slip).
        positions = list(DevicePosition.objects.filter(device__driver__routes__in=active))
        for position in positions:
            if rng.random() < 0.7:
                position.location = Point(
                    position.location.x + rng.uniform(-0.004, 0.004),
                    position.location.y + rng.uniform(-0.004, 0.004),
                    srid=4326,
                )
            position.fix_time = position.received_at = at
        DevicePosition.objects.bulk_update(positions, ["location", "fix_time", "received_at"])
        for route in active:
            counts["eta_changed"] += route_eta_update(route, now=at)
            hold(organization)
        if round_ == 1:  # mid-way, one stop delivered (with a POD) and one failed per route
            for route in active:
                first, second = route.stops.filter(status="pending").order_by("sequence")[:2]
                done_at = at + timedelta(minutes=1)
                shipment = Shipment.objects.create(
                    organization=organization,
                    carrier=carrier,
                    reference=f"B-{first.pk}-{stamp}",
                    barcode=f"B{first.pk}{stamp}",
                    recipient_name="Bench",
                    location=first.location,
                    status="out_for_delivery",
                )
                StopShipment.objects.create(
                    organization=organization, stop=first, shipment=shipment
                )
                with transaction.atomic():
                    stop_complete(stop=first, actor=None, at=done_at)
                    far = rng.random() < 0.1
                    pod = ProofOfDelivery.objects.create(
                        organization=organization,
                        idempotency_key=f"bench-{first.pk}-{time.time_ns()}",
                        shipment=shipment,
                        stop=first,
                        captured_at=done_at,
                        location=first.location,
                        distance_m=400.0 if far else 12.0,
                        outside_geofence=far,
                    )
                    emit(catalog.pod_captured(pod, shipment=shipment))
                with transaction.atomic():
                    stop_fail(
                        stop=second,
                        reason=FailureReason.NOT_HOME,
                        actor=None,
                        at=done_at + timedelta(minutes=5),
                    )
                hold(organization)
                counts["status_changed"] += 2
                counts["pod_captured"] += 1
    return dict(counts)


def deliver_timed(organization, rows) -> dict:
    """Every row to its subscribers as the relay does (`organization_scope`, one transaction
    per subscriber with its receipt), timing the exceptions subscribers: the rule alone (the
    handler's work, up to the commit) and as relayed (with the receipt and the COMMIT). Per
    event: the sum over the exceptions subscribers it wakes. One event in SAMPLE_EVERY has its
    statements counted instead (capturing them costs time: those are not timed)."""
    out = {"rule": [], "relayed": [], "cpu": [], "queries": [], "per_subscriber": defaultdict(list)}
    for index, row in enumerate(rows):
        event = row.as_event()
        counted = index % SAMPLE_EVERY == 0
        rule = relayed = cpu = 0.0
        count = 0
        woken = False
        for subscriber in subscribers_for(row.type):
            mine = subscriber.name.startswith("exceptions.")
            woken = woken or mine
            if counted:
                with (
                    CaptureQueriesContext(connection) as captured,
                    organization_scope(organization),
                    transaction.atomic(),
                ):
                    subscriber.handler(event)
                    asked = len(captured)  # the receipt's statements are the relay's
                    OutboxReceipt.objects.get_or_create(event_id=row.pk, subscriber=subscriber.name)
                count += asked if mine else 0
                continue
            began, began_cpu = time.perf_counter(), time.process_time()
            with organization_scope(organization), transaction.atomic():
                subscriber.handler(event)
                handled, handled_cpu = time.perf_counter(), time.process_time()
                OutboxReceipt.objects.get_or_create(event_id=row.pk, subscriber=subscriber.name)
            done = time.perf_counter()
            if mine:
                rule += (handled - began) * 1000
                relayed += (done - began) * 1000
                cpu += (handled_cpu - began_cpu) * 1000
                out["per_subscriber"][subscriber.name].append((handled - began) * 1000)
        row.delivered_at = timezone.now()
        row.save(update_fields=["delivered_at"])
        if not woken:
            continue
        if counted:
            out["queries"].append(count)
        else:
            out["rule"].append(rule)
            out["relayed"].append(relayed)
            out["cpu"].append(cpu)
    return out


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return round(values[0], 3) if values else 0.0
    return round(statistics.quantiles(values, n=100)[q - 1], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=2000)
    parser.add_argument("--active", type=int, default=400)
    args = parser.parse_args()
    rng = random.Random(7)
    organization = benchmark_organization(BENCH_SLUG, "Exception events benchmark")
    try:
        with organization_scope(organization):
            OutboxEvent.dangerously_unscoped.filter(organization=organization).delete()
            Alert.objects.all().delete()  # the previous run's (its shipments stay: custody)
            print(f"building {args.routes} routes of 10 stops …", flush=True)
            routes, _tokens = build(organization, args.routes, rng)
            now = timezone.now()
            windows(routes, now, rng)
            Route.objects.filter(pk__in=[r.pk for r in routes]).update(started_at=now)
            with connection.cursor() as cursor:
                for table in TABLES:
                    cursor.execute(f"ANALYZE {table}")
            active = list(
                Route.objects.filter(pk__in=[r.pk for r in rng.sample(routes, args.active)])
                .select_related("hub")
                .order_by("pk")
            )
            route_eta_update(active[0], now=now - timedelta(minutes=1))  # warm the road graph
            OutboxEvent.dangerously_unscoped.filter(organization=organization).delete()
            hold(organization)
            began = time.perf_counter()
            emitted = replay_day(organization, active, now, rng)
            replay_s = time.perf_counter() - began
            rows = list(
                OutboxEvent.dangerously_unscoped.filter(
                    organization=organization, delivered_at__isnull=True
                ).order_by("pk")
            )
            print(f"{len(rows)} events from {len(active)} routes; delivering …", flush=True)
            load = os.getloadavg()[0]  # the other processes competing for the cores
            timed = deliver_timed(organization, rows)
            alerts = dict(
                Alert.objects.values_list("kind").annotate(n=django.db.models.Count("id"))
            )
        rule, relayed, queries = timed["rule"], timed["relayed"], timed["queries"]
        results = {
            "routes": args.routes,
            "stops_per_route": 10,
            "active_routes": len(active),
            "eta_rounds": ROUNDS,
            "events": len(rows),
            "events_eta_changed": emitted.get("eta_changed", 0),
            "events_status_changed": emitted.get("status_changed", 0),
            "events_pod_captured": emitted.get("pod_captured", 0),
            "events_timed": len(rule),
            "replay_s": round(replay_s, 1),
            "event_rules_p50_ms": pct(rule, 50),
            "event_rules_p95_ms": pct(rule, 95),
            "event_rules_p99_ms": pct(rule, 99),
            "event_rules_mean_ms": round(statistics.fmean(rule), 3) if rule else 0.0,
            "event_rules_relayed_p50_ms": pct(relayed, 50),
            "event_rules_relayed_p95_ms": pct(relayed, 95),
            "event_rules_relayed_p99_ms": pct(relayed, 99),
            "event_rules_python_cpu_p50_ms": pct(timed["cpu"], 50),
            "event_rules_python_cpu_p95_ms": pct(timed["cpu"], 95),
            "load_average_1m_before": round(load, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
            "events_counted": len(queries),
            "event_rules_queries_p50": int(statistics.median(queries)) if queries else 0,
            "event_rules_queries_max": max(queries, default=0),
            **{
                f"{name.removeprefix('exceptions.').replace('.', '_')}_p95_ms": pct(values, 95)
                for name, values in sorted(timed["per_subscriber"].items())
            },
            **{f"alerts_{kind}": count for kind, count in sorted(alerts.items())},
        }
        write_results("exceptions_event_rules", results)
    finally:
        park_running_routes(organization)


if __name__ == "__main__":
    main()
