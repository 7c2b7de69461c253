"""What PostgreSQL itself can do on this machine, for ping-shaped rows: the floors the ingest
figures are judged against (issue 19), measured in the same run as the ingest figures.

- **COPY floor**: `COPY … FROM STDIN (FORMAT binary)` into a scratch table of the same shape as
  `tracking_ping` (same columns and types, range-partitioned by day on `fix_time`, the same
  primary key), by as many parallel connections as the machine has cores, in chunks of 10,000
  rows. No conflict handling, no last position, no flags: only getting rows in.
- **Commit floor**: one row per transaction (`INSERT … ON CONFLICT DO NOTHING`, autocommit) into
  the same table from 32 clients, by `pgbench` (C, not Python: the client must not be what is
  measured).

Both use the database of DATABASE_URL and drop their scratch table afterwards.

    .venv/bin/python bench/ingest_floor.py --duration 10      # on its own
    (bench/ingest.py measures both first and reports the ratios)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.db import connection  # noqa: E402

SCRATCH = "bench_floor_ping"
COLUMNS = (
    "organization_id, device_id, fix_time, event_id, received_at, location, accuracy_m, "
    "speed_mps, heading_deg, altitude_m, battery_pct, charging, moving, mock, source, flags, "
    "attributes"
)
DAYS = 3  # partitions around today: yesterday, today, tomorrow


def _conninfo() -> dict:
    db = connection.settings_dict
    return {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
    }


def create_scratch() -> None:
    """The scratch table: `tracking_ping`'s columns, defaults and primary key, partitioned by
    day like it (a partition per day, as ping_partitions makes them)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(**_conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        conn.execute(
            f"CREATE TABLE {SCRATCH} (LIKE tracking_ping INCLUDING DEFAULTS) "
            "PARTITION BY RANGE (fix_time)"
        )
        conn.execute(
            f"ALTER TABLE {SCRATCH} ADD PRIMARY KEY "
            "(organization_id, device_id, fix_time, event_id)"
        )
        for offset in range(-1, DAYS - 1):
            start = today + timedelta(days=offset)
            end = start + timedelta(days=1)
            conn.execute(  # DDL takes no parameters: the bounds are our own timestamps
                f"CREATE TABLE {SCRATCH}_{offset + 1} PARTITION OF {SCRATCH} "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )


def drop_scratch() -> None:
    with psycopg.connect(**_conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
    settle()


def settle() -> None:
    """Write out what the last measurement left in the WAL (millions of rows for the COPY
    floor), so the checkpoint it triggers does not slow the next measurement down (it did:
    every figure after the COPY floor came out at half). Needs a superuser; skipped if not."""
    try:
        with psycopg.connect(**_conninfo(), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as exc:
        print(f"(no CHECKPOINT between measurements: {exc})")


def _point_hex(lon: float, lat: float) -> str:
    """Hex EWKB of a POINT with SRID 4326: PostGIS's cheapest text input for geometry."""
    import struct

    return struct.pack("<BIIdd", 1, 0x20000001, 4326, lon, lat).hex()


def copy_floor(duration: float, *, connections: int | None = None, chunk: int = 10_000) -> dict:
    """Rows/s that `COPY` puts into the scratch table. Each chunk's text is made by joining
    prepared lines with a new device number each (a few milliseconds per 10,000 rows), so the
    client costs little next to the server's work."""
    connections = connections or os.cpu_count() or 2
    create_scratch()
    totals = [0] * connections
    stop_at = time.perf_counter() + duration
    start = datetime.now(UTC) - timedelta(hours=12)
    # One line per row but the device: time, received, location and the rest; 1,000 devices
    # per chunk, each with chunk/1,000 fixes a second apart.
    tails = []
    for i in range(chunk):
        when = (start + timedelta(seconds=i // 1000)).isoformat()
        point = _point_hex(-71.25, -29.9 + (i // 1000) * 1e-4)
        tails.append(
            f"\t{when}\t\t{when}\t{point}\t6\t10\t0\t\\N\t80\t\\N\tt\tf\tnative\t0\t{{}}\n"
        )

    def copier(number: int) -> None:
        with psycopg.connect(**_conninfo(), autocommit=True) as conn:
            serial = 0
            while time.perf_counter() < stop_at:
                serial += 1
                base = (number * 1_000_000 + serial) * 1000
                text = "".join(f"1\t{base + i % 1000}{tail}" for i, tail in enumerate(tails))
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY {SCRATCH} ({COLUMNS}) FROM STDIN") as copy,
                ):
                    copy.write(text)
                totals[number] += chunk

    started = time.perf_counter()
    threads = [threading.Thread(target=copier, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    drop_scratch()
    return {
        "floor_copy_rows_per_s": round(sum(totals) / elapsed),
        "floor_copy_connections": connections,
    }


PGBENCH_SCRIPT = f"""\\set device random(1, 1000000)
\\set ms random(0, 43200000)
INSERT INTO {SCRATCH} ({COLUMNS})
VALUES (1, :device, now() - (:ms * interval '1 millisecond'), '', now(),
        ST_SetSRID(ST_MakePoint(-71.25, -29.9), 4326), 6, 10, 0, NULL, 80, NULL, true, false,
        'osmand', 0, '{{}}')
ON CONFLICT DO NOTHING;
"""


def commit_floor(duration: float, *, clients: int = 32) -> dict:
    """Transactions/s of one-row autocommitted inserts into the scratch table (pgbench)."""
    create_scratch()
    info = _conninfo()
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT)
    command = ["pgbench", "-n", "-c", str(clients), "-j", str(os.cpu_count() or 2),
               "-T", str(int(duration)), "-f", script.name, "-d", info["dbname"]]  # fmt: skip
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if info[key]:
            command += [flag, str(info[key])]
    env = {**os.environ, **({"PGPASSWORD": info["password"]} if info["password"] else {})}
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    finally:
        os.unlink(script.name)
        drop_scratch()
    tps = re.search(r"tps = ([\d.]+)", done.stdout)
    if tps is None:
        raise SystemExit(f"pgbench printed no tps:\n{done.stdout}\n{done.stderr}")
    return {"floor_commit_rows_per_s": round(float(tps.group(1))), "floor_commit_clients": clients}


def main() -> None:
    import argparse

    from bench.results_file import write_results

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per floor")
    args = parser.parse_args()
    results = {**copy_floor(args.duration), **commit_floor(args.duration)}
    results["duration_s"] = args.duration
    write_results("ingest_floor", results)


if __name__ == "__main__":
    main()
