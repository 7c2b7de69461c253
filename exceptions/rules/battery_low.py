"""battery_low: a running route's device reports a battery under `battery_low_pct` percent.

Only a recent reading counts (one older than `signal_lost_min` is stale: the signal-lost rule
speaks for that device then, and the alert stays as it is). Clears at `battery_low_pct` +
HYSTERESIS_PCT or when the device is charging, so a battery hovering at the threshold does not
open and close an alert on every reading.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from exceptions.models import AlertKind, Severity
from exceptions.rules.common import RouteSnapshot, open_subjects, refresh_seen, route_row
from exceptions.services import alert_clear, alert_raise
from exceptions.thresholds import thresholds_for

KIND = AlertKind.BATTERY_LOW
HYSTERESIS_PCT = 5


def battery_state(snapshot: RouteSnapshot, now: datetime, *, low_pct: int, fresh_min: float):
    """The condition, named once: "low", "ok" (clear) or None (no fresh reading, or in the
    hysteresis band: keep whatever is open)."""
    if snapshot.battery_pct is None or snapshot.battery_at is None:
        return None
    if now - snapshot.battery_at > timedelta(minutes=fresh_min):
        return None
    if snapshot.charging or snapshot.battery_pct >= low_pct + HYSTERESIS_PCT:
        return "ok"
    if snapshot.battery_pct < low_pct:
        return "low"
    return None


def sweep(organization_id: int, routes: list[RouteSnapshot], now: datetime) -> tuple[int, int]:
    open_alerts = open_subjects(KIND)
    raised = cleared = 0
    holding = []
    for snapshot in routes:
        if snapshot.device_id is None:
            continue
        subject = str(snapshot.device_id)
        thresholds = thresholds_for(organization_id, snapshot.carrier_id)
        state = battery_state(
            snapshot,
            now,
            low_pct=thresholds.battery_low_pct,
            fresh_min=thresholds.signal_lost_min,
        )
        if state == "low" and subject not in open_alerts:
            alert_raise(
                organization_id=organization_id,
                kind=KIND,
                subject_type="device",
                subject_id=subject,
                severity=Severity.LOW,
                started_at=snapshot.battery_at,
                title=f"{snapshot.code}: phone battery at {snapshot.battery_pct}%",
                detail={
                    "device": snapshot.device_id,
                    "battery_pct": snapshot.battery_pct,
                    "limit_pct": thresholds.battery_low_pct,
                },
                route=route_row(snapshot.route_id),
                carrier_id=snapshot.carrier_id,
            )
            raised += 1
        elif state == "low":
            holding.append(subject)
        elif state == "ok" and subject in open_alerts:
            alert_clear(
                organization_id=organization_id,
                kind=KIND,
                subject_type="device",
                subject_id=subject,
                reason="charging" if snapshot.charging else "battery recovered",
            )
            cleared += 1
    refresh_seen(KIND, open_alerts, holding)
    return raised, cleared
