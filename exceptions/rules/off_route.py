"""off_route: a running route's vehicle has been more than `off_route_m` from the current leg
of its planned geometry for more than `off_route_s` seconds.

The current leg is the part of the planned line between the last done stop (the one the
vehicle left most recently; the line's start before the first) and the next open stop after it
(the line's end on the way back to the hub), each placed on the line with ST_LineLocatePoint.
Measuring against the whole line would miss a wrong turn into a street the route drives along
an hour later: routes loop through the same neighbourhood.

Only fresh, unflagged data decides: the current position (the device's newest good fix) must
be younger than FRESH, every unflagged fix since an anchor fix about `off_route_s` ago must be
off the leg, and the anchor must exist (a single far fix is a detour's first second or an
outlier, not an off-route vehicle). Clears with hysteresis, so a vehicle hovering at the
threshold does not open and close alerts: the newest fix and every unflagged fix of the last
CLEAR_S seconds within CLEAR_FACTOR x `off_route_m` of the leg; or the route stops running.
A re-planned route is measured against its new line at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection

from exceptions.models import AlertKind, Severity
from exceptions.rules.common import (
    RouteSnapshot,
    clear_route_alert,
    clear_stopped_routes,
    open_subjects,
    refresh_seen,
    route_row,
)
from exceptions.services import alert_raise
from exceptions.thresholds import thresholds_for
from tracking.models import DONE_STOP_STATUSES, OPEN_STOP_STATUSES

KIND = AlertKind.OFF_ROUTE
FRESH = timedelta(minutes=3)
ANCHOR_SLACK = timedelta(minutes=5)
CLEAR_FACTOR = 0.5
CLEAR_S = 60

# Every candidate route in one statement, each with its carrier's thresholds (arrays): the
# current leg (a substring of the planned line, computed once per route), the distance to it
# now, whether every fix since the anchor was off it, and whether the vehicle is back on it
# (every fix of the last CLEAR_S seconds within the clearing distance).
_OFF_ROUTE_SQL = """
WITH c AS (
    SELECT * FROM unnest(%(routes)s::bigint[], %(devices)s::bigint[], %(metres)s::float8[],
                         %(seconds)s::float8[], %(open)s::boolean[])
           AS c(route_id, device_id, off_m, off_s, is_open)
),
-- MATERIALIZED: each route's leg is cut once and reused by every ping compared with it (left
-- to the planner, the cut is inlined and recomputed for every ping).
legs AS MATERIALIZED (
    SELECT c.*, dp.location::geography AS here,
           ST_LineSubstring(
               r.planned_geometry,
               LEAST(COALESCE(done.at, 0), COALESCE(upcoming.at, 1)),
               GREATEST(COALESCE(done.at, 0), COALESCE(upcoming.at, 1)))::geography AS line
    FROM c
    JOIN tracking_route r ON r.id = c.route_id AND r.organization_id = %(org)s
    JOIN tracking_deviceposition dp
      ON dp.device_id = c.device_id AND dp.organization_id = %(org)s
    LEFT JOIN LATERAL (
        SELECT s.sequence, ST_LineLocatePoint(r.planned_geometry, s.location) AS at
        FROM tracking_stop s
        WHERE s.organization_id = %(org)s AND s.route_id = c.route_id
          AND s.status = ANY(%(done)s) AND s.actual_departure IS NOT NULL
        ORDER BY s.actual_departure DESC, s.sequence DESC LIMIT 1
    ) done ON true
    LEFT JOIN LATERAL (
        SELECT ST_LineLocatePoint(r.planned_geometry, s.location) AS at
        FROM tracking_stop s
        WHERE s.organization_id = %(org)s AND s.route_id = c.route_id
          AND s.status = ANY(%(pending)s) AND s.sequence > COALESCE(done.sequence, -1)
        ORDER BY s.sequence LIMIT 1
    ) upcoming ON true
    WHERE r.planned_geometry IS NOT NULL
),
measured AS MATERIALIZED (
    SELECT legs.*, ST_Distance(legs.line, legs.here) AS metres FROM legs
)
SELECT m.route_id,
       m.metres,
       CASE WHEN anchor.fix_time IS NULL THEN false ELSE NOT EXISTS (
           SELECT 1 FROM tracking_ping p
           WHERE p.organization_id = %(org)s AND p.device_id = m.device_id AND p.flags = 0
             AND p.fix_time >= anchor.fix_time AND p.fix_time <= %(now)s
             AND ST_DWithin(p.location::geography, m.line, m.off_m)) END,
       anchor.fix_time,
       CASE WHEN NOT m.is_open OR m.metres > m.off_m * %(clear)s THEN false
       ELSE NOT EXISTS (
           SELECT 1 FROM tracking_ping p
           WHERE p.organization_id = %(org)s AND p.device_id = m.device_id AND p.flags = 0
             AND p.fix_time >= %(now)s - make_interval(secs => %(clear_s)s)
             AND p.fix_time <= %(now)s
             AND NOT ST_DWithin(p.location::geography, m.line, m.off_m * %(clear)s)) END
FROM measured m
-- The history is read only for a route that is off the leg now and has no alert yet (a
-- one-time filter: on-line vehicles, the vast majority, cost no ping scan).
LEFT JOIN LATERAL (
    SELECT p.fix_time FROM tracking_ping p
    WHERE NOT m.is_open AND m.metres > m.off_m
      AND p.organization_id = %(org)s AND p.device_id = m.device_id AND p.flags = 0
      AND p.fix_time <= %(now)s - make_interval(secs => m.off_s)
      AND p.fix_time >= %(now)s - make_interval(secs => m.off_s) - %(slack)s
    ORDER BY p.fix_time DESC LIMIT 1
) anchor ON true
"""


def _fresh(snapshot: RouteSnapshot, now: datetime) -> bool:
    return snapshot.fix_time is not None and now - snapshot.fix_time <= FRESH


def distances(organization_id: int, candidates, now: datetime, open_alerts=()) -> dict[int, tuple]:
    """Route id -> (metres from the current leg now, off long enough, since when, back on)."""
    if not candidates:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _OFF_ROUTE_SQL,
            {
                "org": organization_id,
                "now": now,
                "slack": ANCHOR_SLACK,
                "clear": CLEAR_FACTOR,
                "clear_s": CLEAR_S,
                "done": list(DONE_STOP_STATUSES),
                "pending": list(OPEN_STOP_STATUSES),
                "routes": [s.route_id for s, _, _ in candidates],
                "devices": [s.device_id for s, _, _ in candidates],
                "metres": [float(m) for _, m, _ in candidates],
                "seconds": [float(s) for _, _, s in candidates],
                "open": [str(s.route_id) in open_alerts for s, _, _ in candidates],
            },
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def sweep(organization_id: int, routes: list[RouteSnapshot], now: datetime) -> tuple[int, int]:
    open_alerts = open_subjects(KIND)
    candidates = []
    for snapshot in routes:
        if _fresh(snapshot, now):
            thresholds = thresholds_for(organization_id, snapshot.carrier_id)
            candidates.append((snapshot, thresholds.off_route_m, thresholds.off_route_s))
    measured = distances(organization_id, candidates, now, open_alerts)
    raised = cleared = 0
    holding = []
    for snapshot, limit_m, _limit_s in candidates:
        row = measured.get(snapshot.route_id)
        if row is None:
            continue  # no planned geometry: nothing to be off
        metres, off, since, back = row
        subject = str(snapshot.route_id)
        if subject in open_alerts:
            if back:
                clear_route_alert(organization_id, KIND, subject, "back on the planned route")
                cleared += 1
            elif metres > limit_m:
                holding.append(subject)
        elif off:
            alert_raise(
                organization_id=organization_id,
                kind=KIND,
                subject_type="route",
                subject_id=subject,
                severity=Severity.MEDIUM,
                started_at=since,
                title=f"{snapshot.code}: {round(metres)} m off the planned route",
                detail={"device": snapshot.device_id, "distance_m": round(metres, 1)},
                route=route_row(snapshot.route_id),
                carrier_id=snapshot.carrier_id,
            )
            raised += 1
    refresh_seen(KIND, open_alerts, holding)
    running = {str(s.route_id) for s in routes}
    cleared += clear_stopped_routes(organization_id, KIND, open_alerts, running)
    return raised, cleared
