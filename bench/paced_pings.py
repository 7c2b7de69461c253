"""A fleet of phones pinging through the public OsmAnd endpoint at a steady pace: each vehicle
every `period_s`, the fleet spread evenly over the period, over `connections` keep-alive HTTP
connections. Shared by the live benchmarks (console_live.py, tracking_page.py), which time
what the pings cause on their sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bench.ingest import Connection, get_request


async def paced_osmand_pings(
    *,
    host: str,
    port: int,
    connections: int,
    devices: list[tuple[int, str]],
    period_s: float,
    base_lat: dict[int, float],
    measure_from: float,
    stop_at: float,
    on_sent: Callable[[int, float, float], None],
    lat_digits: int = 6,
) -> dict:
    """Ping until `stop_at` (perf_counter time). Each vehicle moves 0.0002° north a round from
    its `base_lat`, with fixes an hour old (never "future"). `on_sent(vehicle_id, lat, sent_at)`
    is called for every ping sent from `measure_from` on, before its request. Returns
    {"ok", "errors", "measured", "acks": [the measured pings' own answer times, s]}."""
    workers = min(connections, len(devices))
    totals: dict = {"ok": 0, "errors": 0, "measured": 0, "acks": []}
    start = time.perf_counter()
    fix_epoch = int(time.time()) - 3600

    async def worker(number: int):
        mine = devices[number::workers]
        conn = Connection(host, port)
        await conn.open()
        offsets = [((number + k * workers) / len(devices)) * period_s for k in range(len(mine))]
        round_no = 0
        while True:
            for (vehicle_id, token), offset in zip(mine, offsets, strict=True):
                due = start + round_no * period_s + offset
                if due >= stop_at:
                    conn.writer.close()
                    return
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                lat = round(base_lat[vehicle_id] + round_no * 0.0002, lat_digits)
                path = (
                    f"/ingest/osmand/{token}/?id={vehicle_id}&lat={lat:.{lat_digits}f}&lon=-71.25"
                    f"&timestamp={fix_epoch + round_no * int(period_s)}&speed=10&bearing=0"
                    f"&accuracy=6&batt=80"
                )
                sent_at = time.perf_counter()
                measured = sent_at >= measure_from
                if measured:
                    on_sent(vehicle_id, lat, sent_at)
                status = await conn.request(get_request(path))
                if 200 <= status < 300:
                    totals["ok"] += 1
                    totals["measured"] += measured
                else:
                    totals["errors"] += 1
                if measured:  # the ping's own answer: ingest and database
                    totals["acks"].append(time.perf_counter() - sent_at)
            round_no += 1

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return totals
