"""off_route: a running route's vehicle has been more than `off_route_m` from its planned
geometry for more than `off_route_s` seconds.

Only fresh, unflagged data decides: the current position (the device's newest good fix) must
be younger than FRESH, every unflagged fix since an anchor fix about `off_route_s` ago must be
off the line, and the anchor must exist (a single far fix is a detour's first second or an
outlier, not an off-route vehicle). Clears when a fresh fix is back within CLEAR_FACTOR x
`off_route_m` of the line (hysteresis), or the route stops running.
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
    route_row,
)
from exceptions.services import alert_raise
from exceptions.thresholds import thresholds_for

KIND = AlertKind.OFF_ROUTE
FRESH = timedelta(minutes=3)
ANCHOR_SLACK = timedelta(minutes=5)
CLEAR_FACTOR = 0.5

# Every candidate route in one statement, each with its carrier's thresholds (arrays): the
# current distance to the line (for clearing) and whether it has been off it long enough.
_OFF_ROUTE_SQL = """
WITH c AS (
    SELECT * FROM unnest(%(routes)s::bigint[], %(devices)s::bigint[], %(metres)s::float8[],
                         %(seconds)s::float8[])
           AS c(route_id, device_id, off_m, off_s)
)
SELECT c.route_id,
       ST_Distance(r.planned_geometry::geography, dp.location::geography),
       anchor.fix_time IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM tracking_ping p
           WHERE p.organization_id = %(org)s AND p.device_id = c.device_id AND p.flags = 0
             AND p.fix_time >= anchor.fix_time AND p.fix_time <= %(now)s
             AND ST_DWithin(p.location::geography, r.planned_geometry::geography, c.off_m)),
       anchor.fix_time
FROM c
JOIN tracking_route r ON r.id = c.route_id AND r.organization_id = %(org)s
JOIN tracking_deviceposition dp ON dp.device_id = c.device_id AND dp.organization_id = %(org)s
LEFT JOIN LATERAL (
    SELECT p.fix_time FROM tracking_ping p
    WHERE p.organization_id = %(org)s AND p.device_id = c.device_id AND p.flags = 0
      AND p.fix_time <= %(now)s - make_interval(secs => c.off_s)
      AND p.fix_time >= %(now)s - make_interval(secs => c.off_s) - %(slack)s
    ORDER BY p.fix_time DESC LIMIT 1
) anchor ON true
WHERE r.planned_geometry IS NOT NULL
"""


def _fresh(snapshot: RouteSnapshot, now: datetime) -> bool:
    return snapshot.fix_time is not None and now - snapshot.fix_time <= FRESH


def distances(organization_id: int, candidates, now: datetime) -> dict[int, tuple]:
    """Route id -> (metres from the line now, off long enough, since when)."""
    if not candidates:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _OFF_ROUTE_SQL,
            {
                "org": organization_id,
                "now": now,
                "slack": ANCHOR_SLACK,
                "routes": [s.route_id for s, _, _ in candidates],
                "devices": [s.device_id for s, _, _ in candidates],
                "metres": [float(m) for _, m, _ in candidates],
                "seconds": [float(s) for _, _, s in candidates],
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
    measured = distances(organization_id, candidates, now)
    raised = cleared = 0
    for snapshot, limit_m, _limit_s in candidates:
        row = measured.get(snapshot.route_id)
        if row is None:
            continue  # no planned geometry: nothing to be off
        metres, off, since = row
        subject = str(snapshot.route_id)
        if off and subject not in open_alerts:
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
        elif subject in open_alerts and metres <= CLEAR_FACTOR * limit_m:
            clear_route_alert(organization_id, KIND, subject, "back on the planned route")
            cleared += 1
    running = {str(s.route_id) for s in routes}
    cleared += clear_stopped_routes(organization_id, KIND, open_alerts, running)
    return raised, cleared
