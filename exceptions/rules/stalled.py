"""stalled: a running route's vehicle has not moved (all its good fixes of the last
`stalled_min` minutes within `stalled_radius_m` of where it is now) and it is neither at one of
its stops nor at its hub (standing there is service or loading, the dwell rule's business).

Only fresh, unflagged data decides: the current position is the device's newest good fix and
must be younger than FRESH; the history is unflagged pings, and there must be one from about
`stalled_min` minutes ago (an anchor) or the vehicle's whereabouts then are unknown. Clears when
a fresh fix is more than CLEAR_FACTOR x the radius away from where it stalled (hysteresis: GPS
jitter at the edge of the radius must not close and reopen it), or when the route stops running.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection

from exceptions.models import AlertKind, Severity
from exceptions.rules.common import (
    RouteSnapshot,
    clear_route_alert,
    open_subjects,
    refresh_seen,
    route_row,
)
from exceptions.services import alert_raise
from exceptions.thresholds import thresholds_for
from tracking.geo import distance_m

KIND = AlertKind.STALLED
FRESH = timedelta(minutes=3)
ANCHOR_SLACK = timedelta(minutes=5)
STOP_RADIUS_M = 100.0
CLEAR_FACTOR = 2.0

# One statement for every candidate route: the thresholds ride along as arrays (one element
# per route) so each carrier's own settings apply without a query per route.
_STALLED_SQL = """
WITH c AS (
    SELECT * FROM unnest(%(routes)s::bigint[], %(devices)s::bigint[], %(mins)s::float8[],
                         %(radius)s::float8[])
           AS c(route_id, device_id, stalled_min, radius_m)
)
SELECT c.route_id, anchor.fix_time
FROM c
JOIN tracking_route r ON r.id = c.route_id AND r.organization_id = %(org)s
JOIN tracking_hub h ON h.id = r.hub_id AND h.organization_id = %(org)s
JOIN tracking_deviceposition dp ON dp.device_id = c.device_id AND dp.organization_id = %(org)s
JOIN LATERAL (
    SELECT p.fix_time FROM tracking_ping p
    WHERE p.organization_id = %(org)s AND p.device_id = c.device_id AND p.flags = 0
      AND p.fix_time <= %(now)s - make_interval(secs => c.stalled_min * 60)
      AND p.fix_time >= %(now)s - make_interval(secs => c.stalled_min * 60) - %(slack)s
    ORDER BY p.fix_time DESC LIMIT 1
) anchor ON true
WHERE NOT EXISTS (
        SELECT 1 FROM tracking_ping p
        WHERE p.organization_id = %(org)s AND p.device_id = c.device_id AND p.flags = 0
          AND p.fix_time >= anchor.fix_time AND p.fix_time <= %(now)s
          AND NOT ST_DWithin(p.location::geography, dp.location::geography, c.radius_m))
  AND NOT ST_DWithin(h.location::geography, dp.location::geography, %(stop_radius)s)
  AND NOT EXISTS (
        SELECT 1 FROM tracking_stop s
        WHERE s.organization_id = %(org)s AND s.route_id = c.route_id
          AND ST_DWithin(s.location::geography, dp.location::geography, %(stop_radius)s))
"""


def stalled_since(
    organization_id: int, candidates: list[tuple[RouteSnapshot, float, float]], now: datetime
) -> dict[int, datetime]:
    """Route id -> since when it has stood still, for the candidates that are stalled now."""
    if not candidates:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _STALLED_SQL,
            {
                "org": organization_id,
                "now": now,
                "slack": ANCHOR_SLACK,
                "stop_radius": STOP_RADIUS_M,
                "routes": [s.route_id for s, _, _ in candidates],
                "devices": [s.device_id for s, _, _ in candidates],
                "mins": [float(m) for _, m, _ in candidates],
                "radius": [float(r) for _, _, r in candidates],
            },
        )
        return dict(cursor.fetchall())


def _fresh(snapshot: RouteSnapshot, now: datetime) -> bool:
    return snapshot.fix_time is not None and now - snapshot.fix_time <= FRESH


def sweep(organization_id: int, routes: list[RouteSnapshot], now: datetime) -> tuple[int, int]:
    open_alerts = open_subjects(KIND)
    candidates = []
    for snapshot in routes:
        if _fresh(snapshot, now) and str(snapshot.route_id) not in open_alerts:
            thresholds = thresholds_for(organization_id, snapshot.carrier_id)
            candidates.append((snapshot, thresholds.stalled_min, thresholds.stalled_radius_m))
    stalled = stalled_since(organization_id, candidates, now)
    raised = cleared = 0
    for snapshot, limit_min, radius in candidates:
        since = stalled.get(snapshot.route_id)
        if since is None:
            continue
        alert_raise(
            organization_id=organization_id,
            kind=KIND,
            subject_type="route",
            subject_id=str(snapshot.route_id),
            severity=Severity.MEDIUM,
            started_at=since,
            title=f"{snapshot.code}: vehicle stopped for {int(limit_min)}+ min away from stops",
            detail={
                "device": snapshot.device_id,
                "lat": snapshot.lat,
                "lon": snapshot.lon,
                "radius_m": radius,
                "limit_min": limit_min,
            },
            route=route_row(snapshot.route_id),
            carrier_id=snapshot.carrier_id,
        )
        raised += 1
    by_route = {str(s.route_id): s for s in routes}
    holding = []
    for subject, alert in open_alerts.items():
        snapshot = by_route.get(subject)
        if snapshot is None:
            reason = "route no longer running"
        elif _fresh(snapshot, now) and _moved_away(alert.detail or {}, snapshot):
            reason = "moving again"
        else:
            if _fresh(snapshot, now):  # seen standing where it stalled
                holding.append(subject)
            continue
        clear_route_alert(organization_id, KIND, subject, reason)
        cleared += 1
    refresh_seen(KIND, open_alerts, holding)
    return raised, cleared


def _moved_away(detail: dict, snapshot: RouteSnapshot) -> bool:
    if detail.get("lat") is None or snapshot.lat is None:
        return False
    moved = distance_m(detail["lat"], detail["lon"], snapshot.lat, snapshot.lon)
    return moved > CLEAR_FACTOR * float(detail.get("radius_m") or 50)
