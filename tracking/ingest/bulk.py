"""Storing a large batch of fixes with binary `COPY` straight into `tracking_ping`.

`pings.pings_ingest` uses this for batches of `COPY_MIN_FIXES` fixes or more (a driver app
catching up, GPX imports): `COPY` is what PostgreSQL does fastest (the floor bench/ingest_floor.py
measures), where `INSERT … SELECT … ON CONFLICT` inserts row by row and the JSON batch costs
Python a `json.dumps` and the server a parse.

`COPY` has no `ON CONFLICT`: a row already stored (a replay) makes the whole `COPY` fail with a
unique violation. Replays are rare (a phone resends a batch whose answer it lost), so the batch
is copied inside a transaction (a savepoint if the caller has one open) and, only on that
violation, rolled back and stored again by the one-statement `ON CONFLICT DO NOTHING` path,
which counts the duplicates. Either way the rows, the last position and the device's "last
seen" are committed together or not at all, and nothing is answered before the commit.

Rows are sent in PostgreSQL's binary `COPY` format (psycopg's C row writer):
- the location as EWKB bytes (a POINT with SRID 4326), which `geometry`'s binary input reads
  directly (no WKT or hex text to parse);
- `attributes` as jsonb's binary form: a version byte 1 followed by the JSON text.
Both are sent through psycopg's `bytea` dumper, which writes the bytes as they are.
"""

from __future__ import annotations

import json
import struct
from datetime import datetime

from psycopg.types.string import BytesBinaryDumper

from tracking.ingest.fixes import Fix

# Below this many fixes the one-statement path is as fast (measured: bench/ingest.py) and
# keeps a request to two round trips.
COPY_MIN_FIXES = 64

COPY_PINGS = """
COPY tracking_ping (
    organization_id, device_id, fix_time, event_id, received_at, location, accuracy_m,
    speed_mps, heading_deg, altitude_m, battery_pct, charging, moving, mock, source, flags,
    attributes
) FROM STDIN (FORMAT BINARY)
"""
COPY_TYPES = (
    "int8",
    "int8",
    "timestamptz",
    "text",
    "timestamptz",
    "bytea",  # EWKB, read by geometry_recv
    "float8",
    "float8",
    "float8",
    "float8",
    "int2",
    "bool",
    "bool",
    "bool",
    "text",
    "int4",
    "bytea",  # jsonb binary: version 1 + JSON text
)

# Little-endian EWKB point: byte order 1, type POINT (1) with the SRID flag, SRID, x, y.
_EWKB_POINT = struct.Struct("<BIIdd").pack
_EWKB_TYPE = 0x20000001
_EMPTY_JSONB = b"\x01{}"


def ewkb_point(lon: float, lat: float) -> bytes:
    return _EWKB_POINT(1, _EWKB_TYPE, 4326, lon, lat)


def jsonb_binary(attributes: dict) -> bytes:
    if not attributes:
        return _EMPTY_JSONB
    # The same text json.dumps gives the one-statement path's batch document.
    return b"\x01" + json.dumps(attributes).encode()


def copy_fixes(
    cursor, fixes: list[Fix], *, organization_id: int, device_id: int, received_at: datetime,
    source: str,
) -> None:  # fmt: skip
    """`COPY` the (flagged) fixes into tracking_ping on the raw psycopg `cursor`. Raises
    psycopg.errors.UniqueViolation if any row is already stored (the caller falls back)."""
    point = _EWKB_POINT
    # bytes through psycopg's C dumper: for the bytea type psycopg would otherwise pick the
    # DB-API `Binary` dumper, written in Python (a call per value, two values per row).
    # Registered on this cursor's adapters only.
    cursor.adapters.register_dumper(bytes, BytesBinaryDumper)
    with cursor.copy(COPY_PINGS) as copy:
        copy.set_types(COPY_TYPES)
        write = copy.write_row
        for fix in fixes:
            attributes = fix.attributes
            write(
                (
                    organization_id,
                    device_id,
                    fix.fix_time,
                    fix.event_id,
                    received_at,
                    point(1, _EWKB_TYPE, 4326, fix.lon, fix.lat),
                    fix.accuracy_m,
                    fix.speed_mps,
                    fix.heading_deg,
                    fix.altitude_m,
                    fix.battery_pct,
                    fix.charging,
                    fix.moving,
                    fix.mock,
                    source,
                    fix.flags,
                    jsonb_binary(attributes) if attributes else _EMPTY_JSONB,
                )
            )
