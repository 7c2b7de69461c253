"""SLA scorecard over generated history: 20 carriers × 90 days × ~11,000 stops a day.

    .venv/bin/python bench/sla_scorecard.py                       # the full 1 M stops
    .venv/bin/python bench/sla_scorecard.py --days 7 --stops-per-day 2000   # a quick look
    .venv/bin/python bench/sla_scorecard.py --keep                 # keep the database after

It builds a throwaway database (`<your database>_slabench`, migrated from scratch, dropped at
the end unless --keep), generates the history with SQL `generate_series` (routes, stops,
shipments, stop shipments, scans, proofs and photos, ETA revisions, alerts, ratings and GPS
pings every --ping-every-s seconds), then:

1. rolls every day up with `recompute_day` (`rollup_*`: total and per day);
2. times `scorecard()` for the whole period, 20 carriers, with the previous period compared
   (what the page shows): the first call in a fresh connection (`cold`) and the median of
   --repeat calls (`warm`); the same grouped by driver; and one page of a drill-down from the
   on-time rate (late deliveries, newest first, with the total count).

Results: printed, and written to bench/results/sla_scorecard.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")
os.environ["DEBUG"] = "0"  # as in production: DEBUG keeps every statement

CHILD = "SLA_BENCH_CHILD"


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carriers", type=int, default=20)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--stops-per-day", type=int, default=11000)
    parser.add_argument("--stops-per-route", type=int, default=30)
    parser.add_argument("--ping-every-s", type=int, default=180)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark database.")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Measure the reports again in the database a --keep run left (no generation, "
        "no roll-up; their figures are carried over from the last results file).",
    )
    return parser.parse_args()


def _bench_url(url: str) -> tuple[str, str, str]:
    """(benchmark database URL, its name, the maintenance database URL)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") + "_slabench"
    return (
        urlunsplit(parts._replace(path=f"/{name}")),
        name,
        urlunsplit(parts._replace(path="/postgres", scheme="postgresql")),
    )


def parent(args) -> int:
    """Create and migrate the throwaway database, run the benchmark in it, drop it."""
    import psycopg

    url = os.environ.get("DATABASE_URL", "postgis://postgres@127.0.0.1:5432/control_tower")
    bench_url, name, admin_url = _bench_url(url)
    if not args.reuse:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": bench_url, CHILD: "1"}
    try:
        began = time.monotonic()
        subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], env=env, check=True
        )
        print(f"migrated {name} in {time.monotonic() - began:.1f} s", flush=True)
        return subprocess.run([sys.executable, *sys.argv], env=env, check=False).returncode
    finally:
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------------
# The child: generate, roll up, measure (in the benchmark database).
# ---------------------------------------------------------------------------------------------

GENERATE = [
    # Routes: each day, `routes` routes spread over the carriers, hubs and drivers; on the road
    # from 09:00 local for 4–5 h.
    """
    INSERT INTO tracking_route (organization_id, date, code, status, planned_start, planned_end,
        planned_distance_m, planned_duration_s, started_at, completed_at, created_at,
        carrier_id, driver_id, hub_id, vehicle_id)
    SELECT %(org)s, %(first)s::date + d, 'R' || k, 'completed',
           t0, t0 + interval '4 hours', 30000 + (k * 7919) %% 30000, 14400,
           t0 + ((k * 13) %% 11) * interval '1 minute',
           t0 + interval '4 hours' + ((k * 31 + d) %% 61) * interval '1 minute',
           t0, (%(carriers)s::bigint[])[1 + k %% %(n_carriers)s],
           (%(drivers)s::bigint[])[1 + k %% %(n_drivers)s],
           (%(hubs)s::bigint[])[1 + k %% %(n_hubs)s],
           (%(vehicles)s::bigint[])[1 + k %% %(n_drivers)s]
    FROM generate_series(0, %(days)s - 1) d, generate_series(0, %(routes)s - 1) k,
         LATERAL (SELECT ((%(first)s::date + d)::timestamp + interval '9 hours')
                         AT TIME ZONE %(tz)s AS t0) t
    """,
    # Shipments: one per stop; promised windows of two hours around the plan; a few without.
    """
    INSERT INTO tracking_shipment (organization_id, reference, barcode, status,
        status_changed_at, recipient_name, recipient_phone, recipient_email, address_line1,
        address_line2, city, postal_code, country_code, location, delivery_instructions,
        parcel_count, promised_window_start, promised_window_end, created_at, updated_at,
        carrier_id, hub_id, delivery_pin_hash, service_type)
    SELECT %(org)s, 'B' || r.id || '-' || s, 'B' || r.id || '-' || s, 'delivered',
           r.completed_at, 'Recipient', '', '', 'Calle ' || s, '', 'La Serena', '', 'CL',
           ST_SetSRID(ST_MakePoint(-71.25 + (s %% 17) * 0.003, -29.9 + (r.id %% 13) * 0.003),
                      4326),
           '', 1 + (r.id + s) %% 3,
           CASE WHEN (r.id + s) %% 20 = 0 THEN NULL
                ELSE r.planned_start + (s * 7 - 60) * interval '1 minute' END,
           CASE WHEN (r.id + s) %% 20 = 0 THEN NULL
                ELSE r.planned_start + (s * 7 + 60) * interval '1 minute' END,
           r.created_at, r.created_at, r.carrier_id, r.hub_id, '',
           (ARRAY['same_day', 'next_day', 'standard', 'scheduled'])[1 + (r.id + s) %% 4]
    FROM tracking_route r, generate_series(1, %(per_route)s) s
    WHERE r.organization_id = %(org)s
    """,
    # Stops: 93 % delivered, 7 % failed; arrivals from 10 min early to 25 min late of plan,
    # two neighbours in ten swapped (out of planned order).
    """
    INSERT INTO tracking_stop (organization_id, route_id, sequence, kind, status, location,
        address, planned_arrival, planned_service_s, actual_arrival, actual_departure,
        failure_reason, notes, updated_at)
    SELECT %(org)s, r.id, s, 'delivery',
           CASE WHEN (r.id * 7 + s) %% 100 < 7 THEN 'failed' ELSE 'completed' END,
           ST_SetSRID(ST_MakePoint(-71.25 + (s %% 17) * 0.003, -29.9 + (r.id %% 13) * 0.003),
                      4326),
           'Calle ' || s, r.planned_start + s * 7 * interval '1 minute', 180,
           a.arrival, a.arrival + (2 + (r.id + s) %% 5) * interval '1 minute',
           CASE WHEN (r.id * 7 + s) %% 100 < 7
                THEN (ARRAY['not_home', 'refused', 'address_not_found', 'access_denied'])
                     [1 + (r.id + s) %% 4] ELSE '' END,
           '', r.created_at
    FROM tracking_route r, generate_series(1, %(per_route)s) s,
         LATERAL (SELECT r.planned_start
                         + (CASE WHEN s %% 10 = 3 THEN s + 1 WHEN s %% 10 = 4 THEN s - 1
                                 ELSE s END) * 7 * interval '1 minute'
                         + ((r.id * 17 + s * 29) %% 36 - 10) * interval '1 minute'
                         + CASE WHEN (r.id + s) %% 50 = 0 THEN interval '90 minutes'
                                ELSE interval '0' END AS arrival) a
    WHERE r.organization_id = %(org)s
    """,
    """
    INSERT INTO tracking_stopshipment (organization_id, stop_id, shipment_id)
    SELECT %(org)s, st.id, sh.id FROM tracking_stop st
    JOIN tracking_shipment sh ON sh.organization_id = %(org)s
         AND sh.reference = 'B' || st.route_id || '-' || st.sequence
    WHERE st.organization_id = %(org)s
    """,
    # Scans: out for delivery when the route starts, delivered at the stop (one in 25 missing).
    """
    INSERT INTO tracking_scan (organization_id, idempotency_key, event_id, barcode, scan_type,
        occurred_at, received_at, reason_code, note, result, detail, shipment_id,
        carrier_reason_code, carrier_status_code)
    SELECT %(org)s, 'o' || ss.shipment_id, '', 'x', 'out_for_delivery', r.started_at,
           r.started_at, '', '', 'applied', '', ss.shipment_id, '', ''
    FROM tracking_stopshipment ss JOIN tracking_stop st ON st.id = ss.stop_id
    JOIN tracking_route r ON r.id = st.route_id
    WHERE ss.organization_id = %(org)s AND ss.shipment_id %% 25 <> 0
    UNION ALL
    SELECT %(org)s, 'd' || ss.shipment_id, '', 'x', 'delivered', st.actual_departure,
           st.actual_departure, '', '', 'applied', '', ss.shipment_id, '', ''
    FROM tracking_stopshipment ss JOIN tracking_stop st ON st.id = ss.stop_id
    WHERE ss.organization_id = %(org)s AND st.status = 'completed'
    """,
    # Proofs of the deliveries (2 % outside the geofence), a photo for 97 %.
    """
    INSERT INTO tracking_proofofdelivery (organization_id, idempotency_key, recipient_name,
        captured_at, received_at, outside_geofence, note, shipment_id, stop_id)
    SELECT %(org)s, 'p' || ss.shipment_id, '', st.actual_departure, st.actual_departure,
           ss.shipment_id %% 50 = 0, '', ss.shipment_id, st.id
    FROM tracking_stopshipment ss JOIN tracking_stop st ON st.id = ss.stop_id
    WHERE ss.organization_id = %(org)s AND st.status = 'completed'
    """,
    """
    INSERT INTO tracking_podfile (organization_id, pod_id, kind, storage_name, content_type,
        size_bytes, width, height, sha256)
    SELECT %(org)s, p.id, 'photo', 'bench/' || p.id, 'image/jpeg', 1, 1, 1, ''
    FROM tracking_proofofdelivery p WHERE p.organization_id = %(org)s AND p.id %% 33 <> 0
    """,
    # One ETA revision per stop, half an hour before arrival: the plan, ±10 minutes.
    """
    INSERT INTO tracking_etarevision (organization_id, stop_id, computed_at, eta, earliest,
        latest, method)
    SELECT %(org)s, st.id, st.actual_arrival - interval '30 minutes', st.planned_arrival,
           st.planned_arrival - interval '10 minutes', st.planned_arrival + interval '10 minutes',
           'bench'
    FROM tracking_stop st WHERE st.organization_id = %(org)s
    """,
    # An alert on one route in three.
    """
    INSERT INTO exceptions_alert (organization_id, kind, severity, state, subject_type,
        subject_id, title, detail, started_at, raised_at, last_seen_at, escalation_level,
        resolution_code, resolution_note, auto_resolved, carrier_id, route_id)
    SELECT %(org)s, (ARRAY['stalled', 'signal_lost', 'long_dwell', 'predicted_late'])
                    [1 + r.id %% 4], 'medium', 'open', 'route', r.id::text, 'bench',
           '{}'::jsonb, r.started_at + interval '2 hours', r.started_at + interval '2 hours',
           r.started_at + interval '2 hours', 0, '', '', false, r.carrier_id, r.id
    FROM tracking_route r WHERE r.organization_id = %(org)s AND r.id %% 3 = 0
    """,
    # One delivery in ten rated.
    """
    INSERT INTO tracking_deliveryrating (organization_id, shipment_id, carrier_id, driver_id,
        stars, comment, delivered_at, created_at)
    SELECT %(org)s, ss.shipment_id, r.carrier_id, r.driver_id, 1 + ss.shipment_id %% 5, '',
           st.actual_departure, st.actual_departure
    FROM tracking_stopshipment ss JOIN tracking_stop st ON st.id = ss.stop_id
    JOIN tracking_route r ON r.id = st.route_id
    WHERE ss.organization_id = %(org)s AND st.status = 'completed' AND ss.shipment_id %% 10 = 0
    """,
    # GPS: the vehicle's phone every --ping-every-s seconds while on the road, with a
    # 20-minute gap on one route in four.
    """
    INSERT INTO tracking_ping (organization_id, device_id, fix_time, event_id, received_at,
        location, mock, source, flags, attributes)
    SELECT %(org)s, d.id, t, '', t, ST_SetSRID(ST_MakePoint(-71.25, -29.9), 4326), false,
           'native', 0, '{}'::jsonb
    FROM tracking_route r JOIN carriers_device d ON d.vehicle_id = r.vehicle_id,
         generate_series(r.started_at, r.completed_at, make_interval(secs => %(ping_s)s)) t
    WHERE r.organization_id = %(org)s
      AND NOT (r.id %% 4 = 0 AND t BETWEEN r.started_at + interval '1 hour'
                                       AND r.started_at + interval '80 minutes')
    """,
]


def child(args) -> int:
    import django

    django.setup()
    import datetime as dt

    from django.db import connection

    from carriers.models import Carrier, Device, Driver, Vehicle
    from carriers.sla.rollup import recompute_day
    from control_tower.models import Organization
    from control_tower.tenancy.scope import organization_scope
    from tracking.models import Hub

    results: dict = {}
    if args.reuse:
        org = Organization.objects.get(slug="sla-bench")
        previous = json.loads((ROOT / "bench/results/sla_scorecard.json").read_text())
        keep = ("generated_", "generate_s", "rollup_")
        results.update({k: v for k, v in previous.items() if k.startswith(keep)})
        with connection.cursor() as cursor:
            cursor.execute("SELECT min(day), max(day) FROM sla_dailyrollup")
            first, last = cursor.fetchone()
        return _measure(args, org, first, last, results)
    org = Organization.objects.create(slug="sla-bench", name="SLA bench")
    zone = org.zone
    today = dt.datetime.now(zone).date()
    first = today - dt.timedelta(days=args.days)
    last = today - dt.timedelta(days=1)
    with organization_scope(org):
        carriers = [
            Carrier.objects.create(code=f"c{i}", name=f"Carrier {i:02d}", kind="3pl")
            for i in range(args.carriers)
        ]
        hubs = [
            Hub.objects.create(
                code=f"h{i}",
                name=f"Hub {i}",
                region=f"Region {i % 4}",
                location="SRID=4326;POINT(-71.25 -29.9)",
            )
            for i in range(max(4, args.carriers // 2))
        ]
        drivers, vehicles = [], []
        for i in range(args.carriers * 20):
            carrier = carriers[i % args.carriers]
            drivers.append(Driver.objects.create(carrier=carrier, name=f"Driver {i}"))
            vehicle = Vehicle.objects.create(carrier=carrier, plate=f"BE-{i:04d}")
            vehicles.append(vehicle)
            Device.objects.create(
                carrier=carrier,
                vehicle=vehicle,
                name=f"Phone {i}",
                kind="driver_app",
                token_prefix=f"{i:010d}",
                token_hash="0" * 64,
            )
    routes = max(1, round(args.stops_per_day / args.stops_per_route))
    params = {
        "org": org.pk,
        "first": first,
        "days": args.days,
        "routes": routes,
        "per_route": args.stops_per_route,
        "tz": str(zone),
        "carriers": [c.pk for c in carriers],
        "n_carriers": len(carriers),
        "hubs": [h.pk for h in hubs],
        "n_hubs": len(hubs),
        "drivers": [d.pk for d in drivers],
        "vehicles": [v.pk for v in vehicles],
        "n_drivers": len(drivers),
        "ping_s": args.ping_every_s,
    }
    began = time.monotonic()
    with connection.cursor() as cursor:
        for statement in GENERATE:
            cursor.execute(statement, params)
        cursor.execute("ANALYZE")
        cursor.execute("SELECT count(*) FROM tracking_stop WHERE organization_id = %s", [org.pk])
        stops = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tracking_ping WHERE organization_id = %s", [org.pk])
        pings = cursor.fetchone()[0]
    results["generated_stops"] = stops
    results["generated_pings"] = pings
    results["generate_s"] = round(time.monotonic() - began, 1)
    print(f"generated {stops} stops, {pings} pings in {results['generate_s']} s", flush=True)

    began = time.monotonic()
    per_day = []
    day = first
    while day <= last:
        per_day.append(recompute_day(organization=org, day=day))
        day += dt.timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sla_dailyrollup, sla_rollupcount, sla_deliveryfact")
        cursor.execute("SELECT count(*) FROM sla_dailyrollup")
        results["rollup_rows"] = cursor.fetchone()[0]
    results["rollup_days"] = len(per_day)
    results["rollup_total_s"] = round(time.monotonic() - began, 1)
    results["rollup_per_day_median_s"] = round(statistics.median(per_day), 2)
    results["rollup_per_day_max_s"] = round(max(per_day), 2)
    print(f"rolled up {len(per_day)} days in {results['rollup_total_s']} s", flush=True)
    return _measure(args, org, first, last, results)


def _measure(args, org, first, last, results: dict) -> int:
    import datetime as dt

    from django.db import connection

    from bench.results_file import write_results
    from carriers.sla import selectors
    from carriers.sla.types import ReportFilters
    from control_tower.tenancy.scope import organization_scope

    filters = ReportFilters(date_from=first, date_to=last)

    def timed(call) -> float:
        start = time.perf_counter()
        call()
        return (time.perf_counter() - start) * 1000

    with organization_scope(org):
        connection.close()  # a fresh connection: nothing cached in the session

        def by_carrier():
            card = selectors.scorecard(actor=None, filters=filters)
            assert len(card.rows) == args.carriers, len(card.rows)
            assert card.total.metrics["deliveries"].value > 0

        results["scorecard_90d_20_carriers_cold_ms"] = round(timed(by_carrier))
        warm = [timed(by_carrier) for _ in range(args.repeat)]
        results["scorecard_90d_20_carriers_ms"] = round(statistics.median(warm))
        results["scorecard_90d_20_carriers_max_ms"] = round(max(warm))
        # What the generated history looks like through the scorecard (a sanity check).
        total = selectors.scorecard(actor=None, filters=filters, compare=False).total.metrics
        for key in (
            "deliveries",
            "on_time_pct",
            "first_attempt_pct",
            "lateness_p90_min",
            "pod_compliance_pct",
            "scan_compliance_pct",
            "tracking_coverage_pct",
            "eta_mae_min",
            "stops_per_hour",
            "exceptions_per_100",
        ):
            results[f"history_{key}"] = total[key].value

        # Both periods with data: the last 45 days against the 45 before.
        half = ReportFilters(
            date_from=first + (last - first) / 2 + dt.timedelta(days=1), date_to=last
        )

        def halves():
            card = selectors.scorecard(actor=None, filters=half)
            assert card.total.metrics["deliveries"].previous

        results["scorecard_45d_vs_previous_45d_ms"] = round(
            statistics.median(timed(halves) for _ in range(args.repeat))
        )

        def by_driver():
            selectors.scorecard(actor=None, filters=filters, group="driver")

        results["scorecard_90d_by_driver_ms"] = round(
            statistics.median(timed(by_driver) for _ in range(args.repeat))
        )

        def series():
            selectors.metric_series(actor=None, filters=filters, metric="on_time_pct")

        results["on_time_series_90d_ms"] = round(
            statistics.median(timed(series) for _ in range(args.repeat))
        )

        def drill():
            page = selectors.drilldown(actor=None, filters=filters, metric="on_time_pct")
            assert page.count > 0 and len(page.rows) == min(50, page.count)

        results["drilldown_late_page_ms"] = round(
            statistics.median(timed(drill) for _ in range(args.repeat))
        )
    results["days"] = (last - first).days + 1
    results["carriers"] = args.carriers
    results["target_scorecard_ms"] = 1000
    write_results("sla_scorecard", results)
    return 0


if __name__ == "__main__":
    arguments = _arguments()
    sys.exit(child(arguments) if os.environ.get(CHILD) else parent(arguments))
