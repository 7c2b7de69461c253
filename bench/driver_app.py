"""Driver app: what a phone waits for, through a real uvicorn on the database in DATABASE_URL.

    .venv/bin/python bench/driver_app.py                 # 120-stop day, 300 queued actions
    .venv/bin/python bench/driver_app.py --stops 40 --actions 100

A bench organization (`bench-driver`, made once, its route of today rebuilt each run) has one
driver with a login and a route of `--stops` stops, one parcel each. The phone signs in through
`POST /api/v1/driver/session/`, then:

- **the day**: `GET /api/v1/driver/today/` timed `--reads` times; its size raw and gzip (what
  a phone downloads on 3G in the morning and caches for the day);
- **the offline queue draining**: `--actions` queued actions sent one at a time, in order, as
  the app's outbox does when the signal comes back (load-out scans, then arrive + complete per
  stop), each sent a second time right after its answer (the retry of a phone that lost the
  answer: the outbox sends item N+1 only once item N is answered, so that is the replay it can
  make): how long the queue takes, and that every retry was answered 2xx;
- **the app's first download**: the shell `/driver/` and every static file it names
  (JavaScript, CSS, the ZXing decoder, Leaflet), raw and gzip.

Results: printed, and written to bench/results/driver_app.json (flat keys, unit in the name).
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import re
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.gis.geos import Point  # noqa: E402
from django.contrib.staticfiles import finders  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.ingest import percentile, start_server  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from carriers.models import Carrier, Driver  # noqa: E402
from control_tower.models import Membership, Organization  # noqa: E402
from control_tower.ratelimit import ratelimit_reset  # noqa: E402
from control_tower.tenancy.roles import Role  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from tracking.models import Hub, Route, Shipment, Stop, StopShipment  # noqa: E402

SLUG, EMAIL, PASSWORD = "bench-driver", "bench-driver@bench.example", "bench-driver-pass"
CENTRE = (-71.2489, -29.9045)


def build_day(stops: int) -> str:
    """The bench organization, its driver and a new route of today with `stops` stops; returns
    the route's code. (Nothing is deleted: custody entries are append-only.)"""
    organization, _ = Organization.objects.get_or_create(
        slug=SLUG, defaults={"name": "Bench driver", "time_zone": "America/Santiago"}
    )
    user = get_user_model().objects.filter(username=EMAIL).first()
    if user is None:
        user = get_user_model().objects.create_user(EMAIL, EMAIL, PASSWORD)
    with organization_scope(organization):
        Membership.objects.get_or_create(organization=organization, user=user, role=Role.DRIVER)
        carrier, _ = Carrier.objects.get_or_create(
            organization=organization, code="bench", defaults={"name": "Bench fleet"}
        )
        driver, _ = Driver.objects.get_or_create(
            organization=organization, user=user, defaults={"carrier": carrier, "name": "Bench"}
        )
        hub, _ = Hub.objects.get_or_create(
            organization=organization,
            code="BENCH",
            defaults={"name": "Bench hub", "location": Point(*CENTRE, srid=4326)},
        )
        today = timezone.localdate(timezone=organization.zone)
        run = timezone.now().strftime("%H%M%S")
        # Earlier runs' routes of today leave the phone's day: only this run's is open.
        Route.objects.filter(date=today).exclude(status="cancelled").update(status="cancelled")
        route = Route.objects.create(
            organization=organization,
            date=today,
            code=f"BENCH-{run}",
            hub=hub,
            carrier=carrier,
            driver=driver,
            planned_start=timezone.now(),
            planned_end=timezone.now() + timedelta(hours=9),
        )
        for n in range(1, stops + 1):
            where = Point(CENTRE[0] + n * 1e-4, CENTRE[1] - n * 1e-4, srid=4326)
            stop = Stop.objects.create(
                organization=organization,
                route=route,
                sequence=n,
                location=where,
                address=f"Calle Bench {n}, La Serena",
                window_start=timezone.now(),
                window_end=timezone.now() + timedelta(hours=3),
            )
            shipment = Shipment.objects.create(
                organization=organization,
                carrier=carrier,
                hub=hub,
                status="at_hub",
                reference=f"BENCH-{run}-{n:05d}",
                barcode=f"B{run}{n:05d}",
                recipient_name="Ana Rojas",
                address_line1=f"Calle Bench {n}",
                city="La Serena",
                country_code="CL",
                location=where,
                delivery_instructions="Gate code 1234, leave with the concierge",
            )
            StopShipment.objects.create(organization=organization, stop=stop, shipment=shipment)
    return route.code


def timed(client: httpx.Client, method: str, url: str, **kwargs) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    response = client.request(method, url, **kwargs)
    return (time.perf_counter() - start) * 1000, response


def the_day(client: httpx.Client, reads: int) -> dict:
    samples, body = [], b""
    for _ in range(reads):
        ms, response = timed(client, "GET", "/api/v1/driver/today/")
        response.raise_for_status()
        samples.append(ms)
        body = response.content
    return {
        "today_p50_ms": round(percentile(samples, 50), 1),
        "today_p95_ms": round(percentile(samples, 95), 1),
        "today_bytes": len(body),
        "today_gzip_bytes": len(gzip.compress(body)),
    }


def queued_actions(day: dict, limit: int) -> list[tuple[str, str, dict]]:
    """What the outbox holds after a morning offline: load-out scans, then stop events."""
    [route] = day["routes"]
    stops = route["stops"]
    now = timezone.now()
    actions = []
    for n, stop in enumerate(stops):
        barcode = stop["shipments"][0]["barcode"]
        at = (now - timedelta(minutes=len(stops) * 3 - n)).isoformat()
        body = {"event_id": str(uuid.uuid4()), "barcode": barcode, "scan_type": "loaded"}
        actions.append(("POST", "/api/v1/ingest/scans", {"scans": [{**body, "occurred_at": at}]}))
    for n, stop in enumerate(stops):
        arrived = (now - timedelta(minutes=2 * (len(stops) - n))).isoformat()
        left = (now - timedelta(minutes=2 * (len(stops) - n) - 1)).isoformat()
        actions.append(("POST", f"/api/v1/stops/{stop['id']}/arrive/", {"occurred_at": arrived}))
        actions.append(("POST", f"/api/v1/stops/{stop['id']}/complete/", {"occurred_at": left}))
    return actions[:limit]


def drain(client: httpx.Client, actions) -> tuple[float, list[float], list[float]]:
    """Send every action in order, each twice (the second is a lost answer's retry)."""
    samples, retries = [], []
    start = time.perf_counter()
    for method, url, body in actions:
        for times in (samples, retries):
            ms, response = timed(client, method, url, json=body)
            if response.status_code >= 300:
                raise SystemExit(f"{url}: {response.status_code} {response.text[:300]}")
            times.append(ms)
    return time.perf_counter() - start, samples, retries


def first_download(client: httpx.Client) -> dict:
    """The shell and every same-site script and stylesheet it names, raw and gzip."""
    shell = client.get("/driver/")
    if shell.status_code != 200:
        return {}
    files = [shell.content]
    # Read from the static folders (the bench's server runs without DEBUG, where static files
    # come from collectstatic's folder, which a checkout may not have built).
    for name in sorted(set(re.findall(r'(?:src|href)="/static/([^"]+\.(?:js|css))"', shell.text))):
        files.append(Path(finders.find(name)).read_bytes())
    return {
        "shell_files": len(files),
        "shell_total_kb": round(sum(len(f) for f in files) / 1024, 1),
        "shell_total_gzip_kb": round(sum(len(gzip.compress(f)) for f in files) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stops", type=int, default=120)
    parser.add_argument("--actions", type=int, default=300)
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)

    code = build_day(args.stops)
    ratelimit_reset("driver-sign-in")
    ratelimit_reset("driver-sign-in-email")
    server = start_server(args)
    try:
        with httpx.Client(base_url=f"http://{args.host}:{args.port}", timeout=30) as client:
            ms, signed_in = timed(
                client,
                "POST",
                "/api/v1/driver/session/",
                json={"email": EMAIL, "password": PASSWORD, "install_id": "bench-phone-0001"},
            )
            signed_in.raise_for_status()
            client.headers["Authorization"] = f"Device {signed_in.json()['token']}"
            results = {"stops": args.stops, "sign_in_ms": round(ms, 1)}
            results |= the_day(client, args.reads)
            actions = queued_actions(client.get("/api/v1/driver/today/").json(), args.actions)
            seconds, samples, retries = drain(client, actions)
            with organization_scope(Organization.objects.get(slug=SLUG)):
                done = Stop.objects.filter(route__code=code, status="completed").count()
            results |= {
                "queued_actions": len(actions),
                "queue_drain_with_retries_s": round(seconds, 2),
                "queue_actions_per_s": round(len(actions) / seconds * 2, 1),
                "queue_action_p50_ms": round(percentile(samples, 50), 1),
                "queue_action_p95_ms": round(percentile(samples, 95), 1),
                "queue_retry_p95_ms": round(percentile(retries, 95), 1),
                "stops_completed": done,
            }
            results |= first_download(client)
    finally:
        server.terminate()
        server.wait(timeout=10)
    write_results("driver_app", results)


if __name__ == "__main__":
    main()
