"""Customer tracking pages: N open tracking sockets while their drivers ping, then the page.

    .venv/bin/python bench/tracking_page.py                   # 1,000 sockets, 60 s (PERFORMANCE.md)
    .venv/bin/python bench/tracking_page.py --sockets 200 --duration 15   # a quick look

A real uvicorn serves control_tower.asgi:application. `--routes` vehicles each drive a running
route of `--sockets / --routes` stops; every stop's shipment has a tracking link and one
socket (`/ws/v1/track/<token>/`) open on it. The organization's `tracking_live_minutes` covers
every stop, so every socket may show its driver and gets a `vehicle` message per ping. Each
vehicle pings every 5 s through the public OsmAnd endpoint. Latency runs from the moment the
ping request is written on the client's socket to the moment its position arrives on each
tracking socket of that vehicle's route; a ping that never arrives on a socket counts as lost.

Then the page itself: `GET /t/<token>` (HTML, server-rendered) timed through the same server,
and the bytes a phone downloads before the map (HTML + CSS + JS; Leaflet comes only with the
map), raw and gzip.

Results: printed, and written to bench/results/tracking_page.json (flat keys, unit in the name).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.contrib.gis.geos import Point  # noqa: E402
from django.contrib.staticfiles import finders  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.ingest import Connection, percentile, start_server  # noqa: E402
from bench.paced_pings import paced_osmand_pings  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from bench.world import park_running_routes  # noqa: E402
from carriers.device_auth import DEVICE_TOKEN_KIND  # noqa: E402
from carriers.models import Carrier, Device, Driver, Vehicle  # noqa: E402
from control_tower.models import Organization  # noqa: E402
from control_tower.redis_clients import sync_redis  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from control_tower.tenancy.secrets import issue_secret  # noqa: E402
from tracking.models import Hub, Route, Shipment, Stop, StopShipment, TrackingLink  # noqa: E402
from tracking.services.tracking_links import links_issue_many  # noqa: E402

BENCH_SLUG = "bench-tracking"
BENCH_QUEUE = "bench-tracking"
PERIOD_S = 5.0


# ---------------------------------------------------------------------------------------------
# Fixture data
# ---------------------------------------------------------------------------------------------


def prepare(routes: int, per_route: int):
    """A fresh day for the benchmark organization: `routes` running routes of `per_route`
    stops, one shipment and one new link per stop, one tracker per vehicle with a new token.
    Returns (organization, [(vehicle id, device token)], [(vehicle id, link token)])."""
    organization, _ = Organization.objects.get_or_create(
        slug=BENCH_SLUG,
        defaults={"name": "Tracking benchmark", "time_zone": "America/Santiago"},
    )
    organization.tracking_live_minutes = 240  # every stop may see its driver: worst case
    organization.save(update_fields=["tracking_live_minutes"])
    now = timezone.now()
    today = now.astimezone(organization.zone).date()
    with organization_scope(organization):
        # Start from nothing each run (links are only known when issued).
        TrackingLink.objects.all().delete()
        StopShipment.objects.all().delete()
        Stop.objects.all().delete()
        Route.objects.all().delete()
        Shipment.objects.all().delete()
        carrier, _ = Carrier.objects.get_or_create(
            organization=organization, code="bench", defaults={"name": "Bench", "kind": "gig"}
        )
        hub, _ = Hub.objects.get_or_create(
            organization=organization,
            code="bench-hub",
            defaults={"name": "Bench hub", "location": Point(-71.25, -29.9, srid=4326)},
        )
        have = Vehicle.objects.count()
        if have < routes:
            new = Vehicle.objects.bulk_create(
                Vehicle(organization=organization, carrier=carrier, plate=f"TP-{i:05d}")
                for i in range(have, routes)
            )
            Driver.objects.bulk_create(
                Driver(organization=organization, carrier=carrier, name=f"Conductor {v.plate}")
                for v in new
            )
            Device.objects.bulk_create(
                Device(
                    organization=organization,
                    carrier=carrier,
                    vehicle=v,
                    name=f"tracker {v.plate}",
                    kind="gps_tracker",
                    token_prefix=f"t{v.pk:015d}"[:16],
                    token_hash="0" * 64,
                )
                for v in new
            )
        fleet = list(Vehicle.objects.order_by("pk")[:routes])
        drivers = list(Driver.objects.order_by("pk")[:routes])
        route_rows = Route.objects.bulk_create(
            Route(
                organization=organization,
                date=today,
                code=f"T{i:05d}",
                hub=hub,
                carrier=carrier,
                vehicle=vehicle,
                driver=drivers[i],
                status="in_progress",
            )
            for i, vehicle in enumerate(fleet)
        )
        shipments = Shipment.objects.bulk_create(
            Shipment(
                organization=organization,
                reference=f"TP-{r}-{s}",
                barcode=f"TPB{r:05d}{s:03d}",
                carrier=carrier,
                status="out_for_delivery",
                recipient_name="Bench",
                address_line1="Calle",
                city="La Serena",
                country_code="CL",
            )
            for r in range(routes)
            for s in range(per_route)
        )
        stops = Stop.objects.bulk_create(
            Stop(
                organization=organization,
                route=route,
                sequence=s + 1,
                location=Point(-71.25 + s * 0.004, -29.9 - r * 0.001, srid=4326),
                eta=now + timedelta(minutes=10 * (s + 1)),
                eta_earliest=now + timedelta(minutes=10 * (s + 1) - 5),
                eta_latest=now + timedelta(minutes=10 * (s + 1) + 7),
            )
            for r, route in enumerate(route_rows)
            for s in range(per_route)
        )
        StopShipment.objects.bulk_create(
            StopShipment(organization=organization, stop=stop, shipment=shipment)
            for stop, shipment in zip(stops, shipments, strict=True)
        )
        raw = links_issue_many(shipments, actor=None)
        vehicle_of_shipment = {
            shipment.pk: fleet[index // per_route].pk for index, shipment in enumerate(shipments)
        }
        links = [(vehicle_of_shipment[pk], token) for pk, token in raw.items()]
        devices = {d.vehicle_id: d for d in Device.objects.filter(vehicle__in=fleet)}
        issued = []
        for vehicle in fleet:
            device = devices[vehicle.pk]
            secret = issue_secret(DEVICE_TOKEN_KIND)
            device.token_prefix, device.token_hash = secret.prefix, secret.digest
            issued.append((vehicle.pk, secret.raw))
        Device.objects.bulk_update(devices.values(), ["token_prefix", "token_hash"], 1000)
    return organization, issued, links


# ---------------------------------------------------------------------------------------------
# Sockets and pings
# ---------------------------------------------------------------------------------------------


async def listen(url, origin, vehicle_id, sent, results, stop: asyncio.Event):
    latencies, received = [], 0
    seen: set = set()
    for attempt in range(6):  # as the page does: a refused handshake is retried
        try:
            socket = await websockets.connect(
                url, additional_headers={"Origin": origin}, max_queue=None, open_timeout=120
            )
            break
        except (websockets.exceptions.InvalidMessage, OSError):
            results["retries"] += 1
            await asyncio.sleep(1 + attempt)
    else:
        raise RuntimeError("a tracking socket could not connect in 6 attempts")
    async with socket:
        first = json.loads(await socket.recv())
        assert first["type"] == "state" and first["data"]["live"], first
        results["ready"] += 1
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(socket.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] != "vehicle":
                continue
            received += 1
            key = (vehicle_id, round(message["data"]["lat"], 5))
            started = sent.get(key)
            if started is None:
                continue
            seen.add(key)
            latencies.append(now - started)
    results["sockets"].append(
        {"vehicle": vehicle_id, "latencies": latencies, "received": received, "seen": seen}
    )


async def ping_load(args, devices, sent: dict, measure_from: float, stop_at: float) -> dict:
    def record(vehicle_id, lat, sent_at):
        sent[(vehicle_id, lat)] = sent_at

    return await paced_osmand_pings(
        host=args.host,
        port=args.port,
        connections=args.connections,
        devices=devices,
        period_s=PERIOD_S,
        base_lat={vid: -29.85 - i * 0.001 for i, (vid, _t) in enumerate(devices)},
        measure_from=measure_from,
        stop_at=stop_at,
        on_sent=record,
        lat_digits=5,
    )


async def live(args, devices, links) -> dict:
    origin = f"http://{args.host}:{args.port}"
    sent: dict = {}
    stop = asyncio.Event()
    results: dict = {"ready": 0, "sockets": [], "retries": 0}
    listeners = []
    connect_started = time.perf_counter()
    for index, (vehicle_id, token) in enumerate(links):
        url = f"ws://{args.host}:{args.port}/ws/v1/track/{token}/?lang=es"
        listeners.append(asyncio.create_task(listen(url, origin, vehicle_id, sent, results, stop)))
        # Customers arrive over time, not in one instant: at most `--connecting` handshakes
        # in flight (each reads its view model; the server's handshake timeout is 10 s).
        while index - results["ready"] >= args.connecting:
            await asyncio.sleep(0.02)
            _raise_failed(listeners)
        if index % 100 == 99:
            print(f"  {results['ready']} sockets open", flush=True)
    while results["ready"] < len(links):
        await asyncio.sleep(0.05)
        _raise_failed(listeners)
    connect_s = time.perf_counter() - connect_started
    measure_from = time.perf_counter() + args.warmup
    totals = await ping_load(args, devices, sent, measure_from, measure_from + args.duration)
    await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*listeners)

    latencies = [x for s in results["sockets"] for x in s["latencies"]]
    expected_per_vehicle: dict[int, set] = {}
    for vehicle_id, lat in sent:
        expected_per_vehicle.setdefault(vehicle_id, set()).add((vehicle_id, lat))
    lost = sum(
        len(expected_per_vehicle.get(s["vehicle"], set()) - s["seen"]) for s in results["sockets"]
    )
    expected = sum(len(expected_per_vehicle.get(s["vehicle"], ())) for s in results["sockets"])
    return {
        "tracking_sockets": len(links),
        "routes": len(devices),
        "sockets_per_route": len(links) // len(devices),
        "sockets_connect_all_s": round(connect_s, 1),
        "socket_handshake_retries": results["retries"],
        "ping_period_s": PERIOD_S,
        "pings_per_s_sent": round(totals["ok"] / (args.warmup + args.duration), 1),
        "ping_errors": totals["errors"],
        "ping_ack_p50_ms": round(percentile(totals["acks"], 50) * 1000, 1),
        "ping_ack_p99_ms": round(percentile(totals["acks"], 99) * 1000, 1),
        "pings_measured": len(sent),
        "update_latency_from": "ping request sent",
        "update_p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "update_p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "update_max_ms": round(max(latencies, default=0) * 1000, 1),
        "updates_expected": expected,
        "updates_received": len(latencies),
        "updates_lost": lost,
        "load_duration_s": args.duration,
    }


def _raise_failed(tasks) -> None:
    for task in tasks:
        if task.done() and task.exception():
            raise task.exception()


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


async def page_times(args, tokens: list[str]) -> dict:
    conn = Connection(args.host, args.port)
    await conn.open()
    timings = []
    for i in range(args.pages + 5):
        token = tokens[i % len(tokens)]
        request = (
            f"GET /t/{token} HTTP/1.1\r\nHost: {args.host}\r\nAccept-Language: es-CL\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        status = await conn.request(request)
        if i >= 5:  # the first ones warm connections and caches
            timings.append(time.perf_counter() - started)
        assert status == 200, status
    conn.writer.close()
    return {
        "page_html_p50_ms": round(percentile(timings, 50) * 1000, 1),
        "page_html_p95_ms": round(percentile(timings, 95) * 1000, 1),
        "page_html_requests": len(timings),
    }


def page_bytes(token: str) -> dict:
    from django.test import Client

    html = Client(HTTP_ACCEPT_LANGUAGE="es-CL").get(f"/t/{token}").content
    css = Path(finders.find("tracking/track.css")).read_bytes()
    js = Path(finders.find("tracking/track.js")).read_bytes()
    leaflet = (
        Path(finders.find("leaflet/leaflet.js")).read_bytes()
        + Path(finders.find("leaflet/leaflet.css")).read_bytes()
    )
    before = [html, css, js]
    return {
        "before_map_raw_kb": round(sum(map(len, before)) / 1024, 1),
        "before_map_gzip_kb": round(sum(len(gzip.compress(b)) for b in before) / 1024, 1),
        "page_html_raw_kb": round(len(html) / 1024, 1),
        "map_adds_gzip_kb": round(len(gzip.compress(leaflet)) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=6)
    parser.add_argument("--connections", type=int, default=20, help="ping HTTP connections")
    parser.add_argument("--connecting", type=int, default=20, help="handshakes in flight")
    parser.add_argument("--pages", type=int, default=200, help="GET /t/<token> requests")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8097)
    args = parser.parse_args()
    per_route = max(1, args.sockets // args.routes)

    print(f"preparing {args.routes} routes × {per_route} tracked stops …", flush=True)
    organization, devices, links = prepare(args.routes, per_route)
    connection.close()
    server = start_server(
        args,
        env={
            "CELERY_TASK_DEFAULT_QUEUE": BENCH_QUEUE,
            # One client address opens every socket here: the per-IP limit is for the world.
            "TRACKING_VIEWS_PER_IP": "100000000",
            "TRACKING_VIEWS_PER_TOKEN": "100000000",
        },
    )
    try:
        print(f"{len(links)} tracking sockets, pings every {PERIOD_S:.0f} s …", flush=True)
        results = asyncio.run(live(args, devices, links))
        results.update(asyncio.run(page_times(args, [t for _v, t in links])))
    finally:
        server.terminate()
        server.wait(timeout=30)
    results.update(page_bytes(links[0][1]))
    results.update({"uvicorn_workers": args.workers, "measured_on": str(datetime.now(UTC).date())})
    write_results("tracking_page", results)
    park_running_routes(organization)
    sync_redis().delete(BENCH_QUEUE)


if __name__ == "__main__":
    main()
