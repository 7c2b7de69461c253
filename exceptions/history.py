"""Alerts of the demo's past days, so "exceptions per 100 stops" has history.

The history replay (tracking/simulation/history.py, a lower layer) tells each recorder it was
given what a replayed route went through (the world's conditions, docs/SIMULATION.md
"Injected conditions"). This one records, already resolved, the alerts the rules would have
raised for the conditions that outlast their thresholds: late starts, long dwells, stalls,
silences and reported breakdowns. Through `alert_raise` and `alert_clear` inside `backfill()`
(the replay's), so nobody is paged or notified, then dated back to when they happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from exceptions.models import Alert, AlertKind, AlertState, AlertTransition, Severity
from exceptions.services import alert_clear, alert_raise
from exceptions.thresholds import thresholds_for
from tracking.models import Stop

SEVERITY = {
    AlertKind.ROUTE_NOT_STARTED: Severity.MEDIUM,
    AlertKind.LONG_DWELL: Severity.MEDIUM,
    AlertKind.STALLED: Severity.MEDIUM,
    AlertKind.SIGNAL_LOST: Severity.HIGH,
    AlertKind.INCIDENT: Severity.CRITICAL,
}


def _raised_at(condition: dict, thresholds) -> datetime | None:
    """When the rule would have raised it (None: the condition ended first)."""
    kind, began = condition["kind"], condition["started_at"]
    if kind == "route_not_started":
        at = began + timedelta(minutes=thresholds.route_not_started_min)
    elif kind == "long_dwell":
        usual = timedelta(seconds=condition["usual_dwell_s"])
        at = began + usual * thresholds.long_dwell_factor
        at += timedelta(minutes=thresholds.long_dwell_margin_min)
    elif kind == "stalled":
        at = began + timedelta(minutes=thresholds.stalled_min)
    elif kind == "signal_lost":
        at = began + timedelta(minutes=thresholds.signal_lost_min)
    elif kind == "breakdown":
        at = condition["reported_at"]
    else:
        return None
    return at if at < condition["ended_at"] else None


def record_route_alerts(*, organization, route, conditions: list[dict]) -> int:
    """Resolved alerts for one replayed route's conditions; returns how many."""
    thresholds = thresholds_for(organization.pk, route.carrier_id)
    recorded = 0
    for condition in conditions:
        raised_at = _raised_at(condition, thresholds)
        if raised_at is None:
            continue
        kind = AlertKind.INCIDENT if condition["kind"] == "breakdown" else condition["kind"]
        on_stop = kind == AlertKind.LONG_DWELL
        subject_type, subject_id = ("stop", condition["stop"]) if on_stop else ("route", route.pk)
        alert = alert_raise(
            organization_id=organization.pk,
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            severity=SEVERITY[kind],
            started_at=condition["started_at"],
            title=f"{route.code}: {AlertKind(kind).label.lower()} (history)",
            detail={"history": True},
            route=route,
            stop=Stop.objects.get(pk=condition["stop"]) if on_stop else None,
            carrier_id=route.carrier_id,
        )
        alert_clear(
            organization_id=organization.pk,
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            reason="history: the condition ended",
        )
        ended = condition["ended_at"]
        Alert.objects.filter(pk=alert.pk).update(
            raised_at=raised_at, last_seen_at=ended, resolved_at=ended
        )
        transitions = AlertTransition.objects.filter(alert=alert)
        transitions.filter(to_state=AlertState.OPEN).update(at=raised_at)
        transitions.filter(to_state=AlertState.RESOLVED).update(at=ended)
        recorded += 1
    return recorded
