"""What the sweep rules share: the open alerts of a kind, and raising/clearing a set at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from exceptions.models import Alert, AlertState
from exceptions.services import alert_clear
from tracking.models import Route, RouteStatus


def open_subjects(kind: str, subject_ids=None) -> dict[str, Alert]:
    """The unresolved alerts of `kind` in the current organization, by subject id (one query):
    a sweep raises only what is new and clears only what is open, instead of touching every
    subject on every pass."""
    alerts = Alert.objects.filter(kind=kind).exclude(state=AlertState.RESOLVED)
    if subject_ids is not None:
        alerts = alerts.filter(subject_id__in=[str(s) for s in subject_ids])
    return {alert.subject_id: alert for alert in alerts}


def refresh_seen(kind: str, open_alerts: dict[str, Alert], holding) -> int:
    """The condition still holds for these subjects: move their unresolved alerts'
    `last_seen_at` to now, in one statement for the whole kind (none when nothing holds).
    No event and no transition: a mere refresh is no news (EXCEPTIONS.md); `alert_raise` is
    for what changes. Wall-clock time, as `alert_raise` stamps it. Returns the rows touched."""
    subjects = [s for s in {str(s) for s in holding} if s in open_alerts]
    if not subjects:
        return 0
    return (
        Alert.objects.filter(kind=kind, subject_id__in=subjects)
        .exclude(state=AlertState.RESOLVED)
        .update(last_seen_at=timezone.now())
    )


@dataclass(frozen=True)
class RouteSnapshot:
    """A running route as the sweep sees it: its newest good fix (any of the route's driver or
    vehicle devices) and the newest battery reading of that device."""

    route_id: int
    code: str
    carrier_id: int
    vehicle_id: int | None
    started_at: datetime | None
    device_id: int | None
    fix_time: datetime | None
    lon: float | None
    lat: float | None
    battery_pct: int | None
    charging: bool | None
    battery_at: datetime | None
    has_device: bool


# One statement for every running route of the organization. DevicePosition only ever holds a
# device's newest unflagged fix, so flagged outliers never make a route look alive or moved;
# the battery comes from the newest ping that reported one (flags are about the location).
_SNAPSHOT_SQL = """
SELECT r.id, r.code, r.carrier_id, r.vehicle_id, r.started_at,
       pos.device_id, pos.fix_time, ST_X(pos.location), ST_Y(pos.location),
       bat.battery_pct, bat.charging, bat.fix_time,
       EXISTS (
           SELECT 1 FROM carriers_device d
           WHERE d.organization_id = %(org)s
             AND (d.driver_id = r.driver_id OR d.vehicle_id = r.vehicle_id)
       )
FROM tracking_route r
LEFT JOIN LATERAL (
    SELECT dp.device_id, dp.fix_time, dp.location
    FROM tracking_deviceposition dp
    JOIN carriers_device d ON d.id = dp.device_id AND d.organization_id = %(org)s
    WHERE dp.organization_id = %(org)s
      AND (d.driver_id = r.driver_id OR d.vehicle_id = r.vehicle_id)
    ORDER BY dp.fix_time DESC
    LIMIT 1
) pos ON true
LEFT JOIN LATERAL (
    SELECT p.battery_pct, p.charging, p.fix_time
    FROM tracking_ping p
    WHERE p.organization_id = %(org)s AND p.device_id = pos.device_id
      AND p.battery_pct IS NOT NULL
      AND p.fix_time > %(since)s AND p.fix_time <= %(now)s
    ORDER BY p.fix_time DESC
    LIMIT 1
) bat ON true
WHERE r.organization_id = %(org)s AND r.status = %(running)s
  AND r.date BETWEEN %(first_day)s AND %(last_day)s
"""


def running_routes(organization_id: int, now: datetime) -> list[RouteSnapshot]:
    with connection.cursor() as cursor:
        cursor.execute(
            _SNAPSHOT_SQL,
            {
                "org": organization_id,
                "now": now,
                "since": now - BATTERY_LOOKBACK,
                "running": RouteStatus.IN_PROGRESS,
                "first_day": (now - ROUTE_DAYS).date(),
                "last_day": (now + ROUTE_DAYS).date(),
            },
        )
        return [RouteSnapshot(*row) for row in cursor.fetchall()]


# How far back the sweep looks for a battery reading (bounds the partitions it reads).
BATTERY_LOOKBACK = timedelta(hours=1)
# Routes of today, give or take the tenants' time zones (as the ETA sweep): a route someone
# forgot to close last week is not a live exception every 30 seconds.
ROUTE_DAYS = timedelta(days=1)


def route_row(route_id: int) -> Route:
    """The route an alert points at (only when one is raised: raising is the rare path)."""
    return Route.objects.get(pk=route_id)


def clear_route_alert(organization_id: int, kind: str, subject: str, reason: str) -> None:
    """The condition ended for a route-level alert (`subject` is the route's id)."""
    alert_clear(
        organization_id=organization_id,
        kind=kind,
        subject_type="route",
        subject_id=subject,
        reason=reason,
    )


def clear_stopped_routes(organization_id: int, kind: str, open_alerts, running: set) -> int:
    """Clear the alerts of routes no longer running (completed, cancelled): a route that is not
    driving has no position to lose or line to leave. Returns how many were cleared."""
    stopped = open_alerts.keys() - running
    for subject in stopped:
        clear_route_alert(organization_id, kind, subject, "route no longer running")
    return len(stopped)
