"""Fleet simulator benchmark: how many fixes per second the simulator sustains while the platform
(uvicorn, 2 workers, on the same machine) ingests them, and so how big a fleet it can drive at
one ping per 5 s.

    .venv/bin/python bench/simulator.py

It plans a past day for the demo tenant (150 shipments, 10 routes on the Coquimbo road network
when loaded), replays it as fast as it can (`speedup` huge: a past day has no wall-clock limit),
and counts what was sent and stored. Writes bench/results/simulator.json.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, date, datetime, timedelta
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
# A benchmark signs nothing worth protecting; production settings refuse to start without a key.
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench.ingest import start_server  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from bench.world import ensure_coquimbo_roads  # noqa: E402
from control_tower.models import Organization  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from tracking.models import Route  # noqa: E402
from tracking.simulation.runner import Simulation  # noqa: E402
from tracking.simulation.world import WorldConfig  # noqa: E402


def fresh_day(organization) -> date:
    """A past day the demo tenant has no routes on yet (each run plays a new one)."""
    day = date(2025, 1, 1) + timedelta(days=int(time.time() // 60) % 300)
    with organization_scope(organization):
        while Route.objects.filter(date=day).exists():
            day += timedelta(days=1)
    return day


class Args:
    host, port, workers = "127.0.0.1", 8098, 2


def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    ensure_coquimbo_roads()
    call_command("load_demo", "--quiet", stdout=StringIO())
    organization = Organization.objects.get(slug="demo")
    day = fresh_day(organization)
    call_command(
        "load_demo", "--date", day.isoformat(), "--shipments", "150", "--quiet", stdout=StringIO()
    )
    server = start_server(Args)
    try:
        simulation = Simulation(
            organization,
            day=day,
            start=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
            config=WorldConfig(seed=1),
            base_url=f"http://{Args.host}:{Args.port}",
            speedup=1e9,
            interval_s=5,
            truth_path=ROOT / "var" / "simulation" / "bench.jsonl",
            log=lambda _m: None,
        )
        started = time.perf_counter()
        sent = simulation.run()
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=20)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracking_ping WHERE organization_id = %s AND fix_time >= %s "
            "AND fix_time < %s",
            [
                organization.pk,
                datetime(day.year, day.month, day.day, tzinfo=UTC),
                datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1),
            ],
        )
        stored = cursor.fetchone()[0]
    fixes_per_s = sent["pings"] / elapsed
    results = {
        "simulated_day": day.isoformat(),
        "routes": len(simulation.timelines),
        "fixes_sent": sent["pings"],
        "fixes_stored": stored,
        "http_errors": sent["errors"],
        "pods_sent": sent["pods"],
        "elapsed_s": round(elapsed, 1),
        "fixes_per_s": round(fixes_per_s),
        "sustainable_vehicles_at_1_ping_per_5_s": int(fixes_per_s * 5),
    }
    write_results("simulator", results)


if __name__ == "__main__":
    main()
