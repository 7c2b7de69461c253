"""The one representation of an alert: the API body, the `alert.*` event payload and the live
frame's data are all this dict, so a client parses one shape everywhere."""

from __future__ import annotations

from control_tower.events.catalog import iso


def _person(user) -> dict | None:
    if user is None:
        return None
    return {"id": user.pk, "email": getattr(user, "email", "") or str(user)}


def alert_data(alert) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "severity": alert.severity,
        "state": alert.state,
        "subject_type": alert.subject_type,
        "subject_id": alert.subject_id,
        "route": alert.route_id,
        "stop": alert.stop_id,
        "vehicle": alert.vehicle_id,
        "shipment": alert.shipment_id,
        "carrier": alert.carrier_id,
        "title": alert.title,
        "detail": alert.detail,
        "started_at": iso(alert.started_at),
        "raised_at": iso(alert.raised_at),
        "last_seen_at": iso(alert.last_seen_at),
        "acknowledged_by": _person(alert.acknowledged_by),
        "acknowledged_at": iso(alert.acknowledged_at),
        "assigned_to": _person(alert.assigned_to),
        "assigned_at": iso(alert.assigned_at),
        "snoozed_until": iso(alert.snoozed_until),
        "escalated_at": iso(alert.escalated_at),
        "escalation_level": alert.escalation_level,
        "resolved_at": iso(alert.resolved_at),
        "resolved_by": _person(alert.resolved_by),
        "resolution_code": alert.resolution_code,
        "resolution_note": alert.resolution_note,
        "auto_resolved": alert.auto_resolved,
    }
