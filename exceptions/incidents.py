"""Incidents a driver (through the phone's device token) or a dispatcher reports on a route:
a breakdown, an accident, anything else. Each raises an `incident` alert on the route, which
no rule clears: a person resolves it once the route is sorted out."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from exceptions.models import Alert, AlertKind, Severity
from exceptions.services import alert_raise
from tracking.errors import InvalidInput, NotFound
from tracking.models import Route

NOTE_MAX = 500


class IncidentKind(models.TextChoices):
    BREAKDOWN = "breakdown", "Vehicle breakdown"
    ACCIDENT = "accident", "Accident"
    # Something wrong with the vehicle that still moves (a warning light, a flat it can limp on).
    VEHICLE = "vehicle", "Vehicle issue"
    OTHER = "other", "Other"


# A vehicle that cannot move (breakdown) or a crash needs someone now; the rest is urgent.
SEVERITY = {
    IncidentKind.BREAKDOWN: Severity.CRITICAL,
    IncidentKind.ACCIDENT: Severity.CRITICAL,
    IncidentKind.VEHICLE: Severity.HIGH,
    IncidentKind.OTHER: Severity.HIGH,
}


def incident_report(*, actor: Actor, route_id, kind: str, note: str = "") -> Alert:
    """Raise (or, for a route with an unresolved incident, update) the route's incident alert.
    The route must be one the actor sees (a device: its own carrier's)."""
    if kind not in IncidentKind.values:
        raise InvalidInput.on("kind", f"Choose one of: {', '.join(IncidentKind.values)}.")
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise InvalidInput.on("note", f"A text of at most {NOTE_MAX} characters.")
    try:
        route_pk = int(route_id)
    except (TypeError, ValueError):
        raise InvalidInput.on("route", "A route id is required.") from None
    route = visible_to(actor, Route).filter(pk=route_pk).first()
    if route is None:
        raise NotFound("No such route.")
    label = IncidentKind(kind).label
    return alert_raise(
        organization_id=route.organization_id,
        kind=AlertKind.INCIDENT,
        subject_type="route",
        subject_id=route.pk,
        severity=SEVERITY[kind],
        started_at=timezone.now(),
        title=f"{route.code}: {label.lower()} reported",
        detail={"incident": kind, "note": note.strip(), "reported_by": actor.label},
        route=route,
        vehicle=route.vehicle,
        carrier_id=route.carrier_id,
        actor=actor.label,
    )
