"""signal_lost: a running route has had no good fix for more than `signal_lost_min` minutes.

The condition is evaluated now, on the newest fix time of the route's devices: a buffered ping
that arrives late with an old fix time never makes the newest fix older (so it cannot raise),
and one newer than the threshold clears the alert. A route that never reported counts from
its start; a route with no device at all is not tracked, so not lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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

KIND = AlertKind.SIGNAL_LOST


def silent_since(snapshot: RouteSnapshot) -> datetime | None:
    return snapshot.fix_time or snapshot.started_at


def is_lost(snapshot: RouteSnapshot, now: datetime, limit_min: float) -> bool:
    if not snapshot.has_device:
        return False  # an untracked route has no signal to lose
    since = silent_since(snapshot)
    return since is not None and now - since > timedelta(minutes=limit_min)


def sweep(organization_id: int, routes: list[RouteSnapshot], now: datetime) -> tuple[int, int]:
    open_alerts = open_subjects(KIND)
    raised = cleared = 0
    running = set()
    holding = []
    for snapshot in routes:
        subject = str(snapshot.route_id)
        running.add(subject)
        limit = thresholds_for(organization_id, snapshot.carrier_id).signal_lost_min
        lost = is_lost(snapshot, now, limit)
        if lost and subject not in open_alerts:
            minutes = int((now - silent_since(snapshot)).total_seconds() // 60)
            alert_raise(
                organization_id=organization_id,
                kind=KIND,
                subject_type="route",
                subject_id=subject,
                severity=Severity.HIGH,
                started_at=silent_since(snapshot),
                title=f"{snapshot.code}: no position for {minutes} min",
                detail={
                    "device": snapshot.device_id,
                    "last_fix": snapshot.fix_time.isoformat() if snapshot.fix_time else None,
                    "limit_min": limit,
                },
                route=route_row(snapshot.route_id),
                carrier_id=snapshot.carrier_id,
            )
            raised += 1
        elif lost:
            holding.append(subject)
        elif subject in open_alerts:
            clear_route_alert(organization_id, KIND, subject, "position received")
            cleared += 1
    refresh_seen(KIND, open_alerts, holding)
    cleared += clear_stopped_routes(organization_id, KIND, open_alerts, running)
    return raised, cleared
