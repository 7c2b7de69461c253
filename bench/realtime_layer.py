"""Live delivery: the hand-written websocket hub (control_tower/realtime.py) against
channels_redis's RedisPubSubChannelLayer, at the dispatcher console benchmark's load.

    python bench/realtime_layer.py                          # 30 s per run, both transports, twice
    python bench/realtime_layer.py --duration 10 --rounds 1 # a quick look

Every run starts one uvicorn process (one worker, loopback), connects 20 websockets subscribed to
one organization's group, then a publisher process sends 400 `vehicle.moved` messages/s (2,000
vehicles once every 5 s, the load shape of bench/console_live.py) for warm-up + duration:

- `hub`: the server is control_tower.asgi:application and the sockets are the real
  /ws/v1/events/ consumer (a dispatcher's session cookie); the publisher calls
  `control_tower.realtime.publish_now` (number and PUBLISH in one Lua script) and the process's
  one Pub/Sub subscription fans each message out to its sockets.
- `channel_layer`: the server is bench.layer_consumer:application (each socket `group_add`s to
  the group on a RedisPubSubChannelLayer and forwards what it receives); the publisher numbers
  the message on the same `seq` key (INCR) and `group_send`s the same JSON text.
- `channel_layer_lean`: the same, with a consumer that skips channels' per-message database
  clean-up (a thread hop per message and socket), to tell the layer's cost from the consumer's.

The transports run back to back, alternating, `--rounds` times, so a busy machine weighs on all.
Latency: from just before the publish call to the message's arrival on each socket (the
publisher is another process: it puts its `time.monotonic()`, a system-wide clock, in the
message). Lost: measured messages a socket had not received when the run ended (`--drain`
seconds after the last publish). CPU: user + system seconds of the server process from the first
measured message to the end of the drain, its busiest second, and per message handed to a
socket. Nothing else is published on these groups: the
benchmark's keys and channels carry this checkout's prefixes.

Results: a table, and bench/results/realtime_layer.json (flat keys `<transport>_run<n>_<figure>`
per run, and `<transport>_<figure>`: the worse of the runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")

import django  # noqa: E402

django.setup()

import websockets  # noqa: E402
from django.db import connection  # noqa: E402

from bench.console_live import PERIOD_S, ensure_dispatcher, session_cookie  # noqa: E402
from bench.ingest import percentile, start_server  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from control_tower.realtime import async_redis, organization_group, publish_now, seq_key  # noqa: E402

TRANSPORTS = ("hub", "channel_layer", "channel_layer_lean")
APPS = {
    "hub": "control_tower.asgi:application",
    "channel_layer": "bench.layer_consumer:application",
    "channel_layer_lean": "bench.layer_consumer:application",
}
PATHS = {
    "hub": "/ws/v1/events/",
    "channel_layer": "/ws/bench/layer/{organization}/",
    "channel_layer_lean": "/ws/bench/layer-lean/{organization}/",
}
EVENT = "vehicle.moved"
CLOCK_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# The publisher (a process of its own: `--publisher <transport>`)
# ---------------------------------------------------------------------------------------------


def moved(number: int, vehicles: int, measured: bool, sent: float) -> dict:
    """A `vehicle.moved` payload as portal/live.py builds it, plus the benchmark's fields: `n`
    (the message's number in the run), `m` (measured, i.e. after the warm-up) and `t` (sent)."""
    vehicle, round_no = number % vehicles + 1, number // vehicles
    fix_time = datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(seconds=round_no * PERIOD_S)
    return {
        "id": vehicle,
        "lat": round(-29.9 - (vehicle % 100) * 0.001 + round_no * 0.0002, 6),
        "lon": -71.25,
        "heading": 90,
        "speed_kmh": 36.0,
        "battery": 80,
        "fix_time": fix_time.isoformat(),
        "route": vehicle,
        "n": number,
        "m": int(measured),
        "t": sent,
    }


async def publisher(args) -> None:
    group = organization_group(args.organization)
    if args.publisher != "hub":
        from bench.layer_consumer import MESSAGE_TYPE, make_layer

        layer, redis = make_layer(), async_redis()

    rate = args.vehicles / PERIOD_S
    start = time.monotonic()
    measure_from = start + args.warmup
    stop_at = measure_from + args.duration
    number, first_measured, behind_max = 0, None, 0.0
    while True:
        due = start + number / rate
        if due >= stop_at:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            behind_max = max(behind_max, -delay)
        sent = time.monotonic()
        measured = sent >= measure_from
        if measured and first_measured is None:
            first_measured = number
            print("measuring", flush=True)
        data = moved(number, args.vehicles, measured, sent)
        if args.publisher == "hub":
            await publish_now(organization_id=args.organization, event=EVENT, data=data)
        else:
            # What a channel-layer hub would have to do to keep the protocol's numbering.
            seq = await redis.incr(seq_key(group))
            text = json.dumps(
                {"v": 1, "type": EVENT, "seq": seq, "data": data}, separators=(",", ":")
            )
            await layer.group_send(group, {"type": MESSAGE_TYPE, "text": text})
        number += 1
    first_measured = number if first_measured is None else first_measured
    summary = {
        "first_measured": first_measured,
        "last": number - 1,
        "measured": number - first_measured,
        "per_s": round((number - first_measured) / args.duration, 1),
        "behind_max_ms": round(behind_max * 1000, 1),
    }
    print(json.dumps(summary), flush=True)


# ---------------------------------------------------------------------------------------------
# The sockets and one run
# ---------------------------------------------------------------------------------------------


class SocketStats:
    """What one websocket saw (updated in place, so a cancelled listener keeps its figures)."""

    def __init__(self) -> None:
        self.ready = False
        self.latencies: list[float] = []
        self.seen: set[int] = set()
        self.received = 0
        self.gaps = 0
        self.disorder = 0
        self.error: BaseException | None = None


async def listen(url: str, headers: dict, stats: SocketStats) -> None:
    try:
        async with websockets.connect(
            url, additional_headers=headers, max_queue=None, open_timeout=20
        ) as ws:
            hello = json.loads(await ws.recv())
            last_seq = hello["data"]["seq"]
            stats.ready = True
            async for raw in ws:
                now = time.monotonic()
                message = json.loads(raw)
                seq = message.get("seq")
                if seq is not None:
                    if seq > last_seq + 1:
                        stats.gaps += seq - last_seq - 1
                    elif seq <= last_seq:
                        stats.disorder += 1
                    last_seq = max(last_seq, seq)
                if message.get("type") != EVENT:
                    continue
                stats.received += 1
                data = message["data"]
                if data.get("m"):
                    stats.latencies.append(now - data["t"])
                    stats.seen.add(data["n"])
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported with the run's figures
        stats.error = exc


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * CLOCK_TICK_S


async def sample_cpu(pid: int, peaks: list[float]) -> None:
    """The server's CPU share second by second: an average under 100 % can hide saturated
    seconds (a backlog building, then draining)."""
    before, at = cpu_seconds(pid), time.monotonic()
    while True:
        await asyncio.sleep(1.0)
        now_cpu, now = cpu_seconds(pid), time.monotonic()
        peaks.append(100 * (now_cpu - before) / (now - at))
        before, at = now_cpu, now


async def measure(args, transport: str, server_pid: int, organization_id: int, cookie: str):
    origin = f"http://{args.host}:{args.port}"
    path = PATHS[transport].format(organization=organization_id)
    url = f"ws://{args.host}:{args.port}{path}"
    headers = {"Origin": origin}
    if transport == "hub":
        headers["Cookie"] = cookie  # the real consumer: a dispatcher's session
    sockets = [SocketStats() for _ in range(args.sockets)]
    listeners = [asyncio.create_task(listen(url, headers, s)) for s in sockets]
    publisher_process = sampler = None
    try:
        deadline = time.monotonic() + 30
        while not all(s.ready for s in sockets):
            failed = [s.error for s in sockets if s.error is not None]
            if failed or time.monotonic() > deadline:
                raise SystemExit(f"{transport}: websockets did not connect: {failed[:1]}")
            await asyncio.sleep(0.05)

        publisher_process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--publisher",
            transport,
            "--organization",
            str(organization_id),
            "--vehicles",
            str(args.vehicles),
            "--warmup",
            str(args.warmup),
            "--duration",
            str(args.duration),
            stdout=subprocess.PIPE,
        )
        load_avg = os.getloadavg()[0]
        cpu_from = client_from = window_from = delivered_from = None
        per_second: list[float] = []
        summary = None
        limit = time.monotonic() + args.warmup + args.duration + 60
        while summary is None:
            line = await asyncio.wait_for(
                publisher_process.stdout.readline(), max(1.0, limit - time.monotonic())
            )
            if not line:
                raise SystemExit(f"{transport}: the publisher stopped without its figures")
            if line.strip() == b"measuring":
                cpu_from, window_from = cpu_seconds(server_pid), time.monotonic()
                client_from = time.process_time()
                delivered_from = sum(s.received for s in sockets)
                sampler = asyncio.create_task(sample_cpu(server_pid, per_second))
            elif line.startswith(b"{"):
                summary = json.loads(line)
        await asyncio.wait_for(publisher_process.wait(), 20)
        await asyncio.sleep(args.drain)  # let the last messages arrive
        window = time.monotonic() - window_from
        server_cpu = cpu_seconds(server_pid) - cpu_from
        client_cpu = time.process_time() - client_from
        delivered = sum(s.received for s in sockets) - delivered_from
    finally:
        if sampler is not None:
            sampler.cancel()
        if publisher_process is not None and publisher_process.returncode is None:
            publisher_process.kill()
            await publisher_process.wait()
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)

    expected = set(range(summary["first_measured"], summary["last"] + 1))
    latencies = [x for s in sockets for x in s.latencies]
    errors = [repr(s.error) for s in sockets if s.error is not None]
    figures = {
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies, default=0) * 1000, 1),
        "received": sum(len(s.seen & expected) for s in sockets),
        "expected": len(expected) * args.sockets,
        "lost": sum(len(expected - s.seen) for s in sockets),
        "seq_gaps": sum(s.gaps for s in sockets),
        "seq_out_of_order": sum(s.disorder for s in sockets),
        "socket_errors": len(errors),
        "server_cpu_s": round(server_cpu, 1),
        "server_cpu_pct": round(100 * server_cpu / window, 1),
        "server_cpu_busiest_s_pct": round(max(per_second, default=0), 1),
        # Per message handed to one socket: the cost of the fan-out, whatever the backlog.
        "server_cpu_us_per_delivery": round(1e6 * server_cpu / max(delivered, 1), 1),
        "client_cpu_pct": round(100 * client_cpu / window, 1),
        "published_per_s": summary["per_s"],
        "publisher_behind_max_ms": summary["behind_max_ms"],
        "loadavg_1m": round(load_avg, 2),
    }
    if errors:
        print(f"{transport}: socket errors: {errors[:3]}", flush=True)
    return figures


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def one_run(args, transport: str, organization_id: int, cookie: str) -> dict:
    if port_in_use(args.host, args.port):
        raise SystemExit(f"{args.host}:{args.port} is taken: pass --port")
    server = start_server(args, app=APPS[transport])
    try:
        return asyncio.run(measure(args, transport, server.pid, organization_id, cookie))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# Figures whose worse value is the larger one (the headline keys take the worse of the runs).
WORSE_IS_LARGER = (
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "lost",
    "seq_gaps",
    "seq_out_of_order",
    "server_cpu_s",
    "server_cpu_pct",
    "server_cpu_busiest_s_pct",
    "server_cpu_us_per_delivery",
)


def print_table(runs: list[tuple[str, int, dict]]) -> None:
    names = list(runs[0][2])
    heads = [f"{transport} #{n}" for transport, n, _ in runs]
    width = max(len(h) for h in heads) + 2
    print(f"{'':26}" + "".join(f"{h:>{width}}" for h in heads))
    for name in names:
        print(f"{name:26}" + "".join(f"{figures[name]:>{width}}" for _t, _n, figures in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds of measured load")
    parser.add_argument("--warmup", type=int, default=5, help="seconds before measuring")
    parser.add_argument("--drain", type=float, default=3.0, help="seconds after the last publish")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each transport")
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    parser.add_argument("--vehicles", type=int, default=2000, help="each publishes every 5 s")
    parser.add_argument("--sockets", type=int, default=20)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--publisher", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--organization", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workers = 1  # one process: its CPU time is the server's

    if args.publisher:
        asyncio.run(publisher(args))
        return

    transports = [t for t in args.transports.split(",") if t]
    if set(transports) - set(TRANSPORTS):
        raise SystemExit(f"--transports: choose from {', '.join(TRANSPORTS)}")
    organization, user = ensure_dispatcher()
    cookie = session_cookie(user)
    connection.close()
    print(
        f"{args.sockets} websockets, {args.vehicles / PERIOD_S:.0f} messages/s, "
        f"{args.warmup} + {args.duration} s per run, {args.rounds} round(s) of "
        f"{', '.join(transports)}",
        flush=True,
    )
    runs: list[tuple[str, int, dict]] = []
    for round_no in range(1, args.rounds + 1):
        for transport in transports:
            print(f"{transport} #{round_no} …", flush=True)
            runs.append((transport, round_no, one_run(args, transport, organization.pk, cookie)))
    print_table(runs)

    results: dict = {
        "websockets": args.sockets,
        "messages_per_s_target": round(args.vehicles / PERIOD_S),
        "load_duration_s": args.duration,
        "warmup_s": args.warmup,
        "drain_s": args.drain,
        "rounds": args.rounds,
        "uvicorn_workers": 1,
    }
    for transport, round_no, figures in runs:
        for name, value in figures.items():
            results[f"{transport}_run{round_no}_{name}"] = value
    for transport in transports:
        mine = [figures for t, _n, figures in runs if t == transport]
        for name in WORSE_IS_LARGER:
            results[f"{transport}_{name}"] = max(figures[name] for figures in mine)
        results[f"{transport}_received"] = min(figures["received"] for figures in mine)
    write_results("realtime_layer", results)


if __name__ == "__main__":
    main()
