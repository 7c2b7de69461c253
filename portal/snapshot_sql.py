# ruff: noqa: S608 - interpolated: compiled querysets and this module's constants; values are params
"""The console snapshot's two big lists (vehicles, routes) written as JSON text by PostgreSQL.

Profiled at 2,000 vehicles (docs/PERFORMANCE.md), the Python snapshot spent more time turning
~8,000 rows into ~4,000 dicts (datetime parsing, `iso`, rounding) and the dicts into JSON than
the database spent on its queries. Here one statement returns both lists as compact JSON text,
ready to splice into the response; Python never sees a row.

The rows come from the same querysets the Python path used (`visible_to`, the organization
scope of the managers, `console_routes`, `late_stop_filter`): their compiled SQL becomes the
statement's CTEs, so tenancy and carrier narrowing are the querysets', not rewritten here. The
rules are the Python path's (tests/portal/test_snapshot_sql.py compares both on the same rows):
a vehicle's route is its in-progress one, else today's planned one, else the latest (ties by
code, id); its position the newest of its own device's and its route driver's phone's.
"""

from __future__ import annotations

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection, transaction
from django.db.models import Count, DateTimeField, F, Func, Q

from tracking.models import DONE_STOP_STATUSES, OPEN_STOP_STATUSES, RouteStatus, Stop, StopStatus
from tracking.route_summary import Latitude, Longitude, late_stop_filter


class _First(Func):
    """The first element of an array (SQL arrays count from 1)."""

    template = "(%(expressions)s)[1]"
    output_field = DateTimeField()


def _iso(column: str) -> str:
    # control_tower.times.iso: UTC, seconds, microseconds only when there are any, "+00:00".
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"CASE WHEN {column} IS NULL THEN 'null' ELSE '\"' || "
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || "
        f"CASE WHEN to_char({utc}, 'US') = '000000' THEN '' ELSE '.' || to_char({utc}, 'US') END"
        f" || '+00:00\"' END"
    )


def _number(expression: str, digits: int | None = None) -> str:
    # JSON has no NaN or Infinity: those become null (control_tower.numbers.finite_or_none).
    value = f"({expression})::text"
    if digits is not None:
        value = f"round(({expression})::numeric, {digits})::float8::text"
    return (
        f"CASE WHEN ({expression}) IS NULL OR ({expression}) IN "
        f"('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) THEN 'null' "
        f"ELSE {value} END"
    )


def _text(expression: str) -> str:
    return f"coalesce(to_json({expression})::text, 'null')"


def _int(expression: str) -> str:
    return f"coalesce(({expression})::text, 'null')"


def _vehicle_object() -> str:
    def pick(field: str) -> str:  # the chosen position's field (own device, else the phone)
        return f"CASE WHEN use_own THEN pv.{field} ELSE pd.{field} END"

    fields = [
        ("id", _int("v.id")),
        ("label", _text("v.plate")),
        ("carrier", _int("v.carrier_id")),
        ("route", _int("vr.id")),
        ("driver", _int("vr.driver_id")),
        ("driver_name", _text("vr.driver_name")),
        ("lat", _number(pick("lat"), 6)),
        ("lon", _number(pick("lon"), 6)),
        ("heading", _number(pick("heading_deg"))),
        ("speed_kmh", _number(f"({pick('speed_mps')}) * 3.6", 1)),
        ("battery", _int(pick("battery_pct"))),
        ("fix_time", _iso(pick("fix_time"))),
    ]
    return _object(fields)


def _route_object() -> str:
    fields = [
        ("id", _int("r.id")),
        ("code", _text("r.code")),
        ("status", _text("r.status")),
        ("date", _text("to_char(r.date, 'YYYY-MM-DD')")),
        ("carrier", _int("r.carrier_id")),
        ("hub", _int("r.hub_id")),
        ("vehicle", _int("r.vehicle_id")),
        ("driver", _int("r.driver_id")),
        ("driver_name", _text("r.driver_name")),
        ("stops_total", "coalesce(s.stops_total, 0)::text"),
        ("stops_done", "coalesce(s.stops_done, 0)::text"),
        ("late_stops", "coalesce(s.late_stops, 0)::text"),
        ("next_eta", _iso("s.next_eta")),
        ("last_fix_time", _iso("GREATEST(pv.fix_time, pd.fix_time)")),
    ]
    return _object(fields)


def _object(fields: list[tuple[str, str]]) -> str:
    """SQL concatenating a compact JSON object, keys in the Python path's order."""
    parts = []
    for i, (name, value) in enumerate(fields):
        opening = "{" if i == 0 else ","
        parts.append(f"'{opening}\"{name}\":' || {value}")
    return " || ".join(parts) + " || '}'"


def _compiled(queryset) -> tuple[str, list]:
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


def snapshot_lists(*, routes, positions, vehicles, today) -> tuple[str, str]:
    """(vehicles JSON array, routes JSON array) as text. `routes`, `positions` and `vehicles`
    are the actor's querysets (already scoped and narrowed) of today's routes, last positions
    and active vehicles."""
    route_rows = routes.order_by().values(
        "id",
        "code",
        "status",
        "date",
        "carrier_id",
        "hub_id",
        "vehicle_id",
        "driver_id",
        driver_name=F("driver__name"),
    )
    stop_rows = (
        Stop.objects.filter(route_id__in=routes.order_by().values("id"))
        .values("route_id")
        .order_by()
        .annotate(
            stops_total=Count("pk", filter=~Q(status=StopStatus.CANCELLED)),
            stops_done=Count("pk", filter=Q(status__in=DONE_STOP_STATUSES)),
            late_stops=Count("pk", filter=late_stop_filter()),
            # The next open stop's ETA (by sequence), as the Python path's DISTINCT ON.
            next_eta=_First(
                ArrayAgg(
                    "eta", filter=Q(status__in=OPEN_STOP_STATUSES), order_by=("sequence", "id")
                )
            ),
        )
    )
    position_rows = (
        positions.order_by()
        .values(
            "fix_time",
            "speed_mps",
            "heading_deg",
            "battery_pct",
            vehicle=F("device__vehicle_id"),
            driver=F("device__driver_id"),
        )
        .annotate(lat=Latitude("location"), lon=Longitude("location"))
    )
    vehicle_rows = vehicles.order_by().values("id", "plate", "carrier_id")
    parts = [_compiled(q) for q in (route_rows, stop_rows, position_rows, vehicle_rows)]
    (r_sql, r_p), (s_sql, s_p), (p_sql, p_p), (v_sql, v_p) = parts
    in_progress, planned = str(RouteStatus.IN_PROGRESS), str(RouteStatus.PLANNED)
    sql = f"""
WITH r AS ({r_sql}),
s AS ({s_sql}),
p AS ({p_sql}),
pv AS (SELECT DISTINCT ON (vehicle) * FROM p WHERE vehicle IS NOT NULL
       ORDER BY vehicle, fix_time DESC),
pd AS (SELECT DISTINCT ON (driver) * FROM p WHERE driver IS NOT NULL
       ORDER BY driver, fix_time DESC),
v AS ({v_sql}),
vr AS (SELECT DISTINCT ON (vehicle_id) vehicle_id, id, driver_id, driver_name FROM r
       WHERE vehicle_id IS NOT NULL
       ORDER BY vehicle_id, status = %s DESC, (date = %s AND status = %s) DESC, date DESC,
                code, id),
vehicles AS (
  SELECT v.plate, v.id, {_vehicle_object()} AS o
  FROM v
  LEFT JOIN vr ON vr.vehicle_id = v.id
  LEFT JOIN pv ON pv.vehicle = v.id
  LEFT JOIN pd ON pd.driver = vr.driver_id
  CROSS JOIN LATERAL (
    SELECT pv.vehicle IS NOT NULL AND (pd.driver IS NULL OR pv.fix_time >= pd.fix_time) AS use_own
  ) choice
),
routes AS (
  SELECT r.code, r.id, {_route_object()} AS o
  FROM r
  LEFT JOIN s ON s.route_id = r.id
  LEFT JOIN pv ON pv.vehicle = r.vehicle_id
  LEFT JOIN pd ON pd.driver = r.driver_id
)
SELECT
  (SELECT coalesce('[' || string_agg(o, ',' ORDER BY plate, id) || ']', '[]') FROM vehicles),
  (SELECT coalesce('[' || string_agg(o, ',' ORDER BY code, id) || ']', '[]') FROM routes)
"""
    params = [*r_p, *s_p, *p_p, *v_p, in_progress, today, planned]
    with transaction.atomic(), connection.cursor() as cursor:
        # Every join here is row set to row set (thousands to thousands): hash joins. The CTEs
        # carry no statistics, and on tables not yet analyzed (a fleet loaded a minute ago) the
        # planner guessed a handful of rows and nested-looped 2,000 x 2,000 (2.2 s, not 0.2).
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(sql, params)
        vehicles_json, routes_json = cursor.fetchone()
    return vehicles_json, routes_json
