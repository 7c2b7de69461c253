"""route_not_started: a planned route still not started `route_not_started_min` minutes after
its planned start. Clears as soon as the route leaves the planned status (started, cancelled).
Routes planned to start more than LOOKBACK ago are left alone: a forgotten plan from last week
is not an operational exception of today."""

from __future__ import annotations

from datetime import datetime, timedelta

from exceptions.models import AlertKind, Severity
from exceptions.rules.common import clear_route_alert, open_subjects, refresh_seen
from exceptions.services import alert_raise
from exceptions.thresholds import thresholds_for
from tracking.models import Route, RouteStatus

KIND = AlertKind.ROUTE_NOT_STARTED
LOOKBACK = timedelta(hours=24)


def is_late_to_start(route: Route, now: datetime, limit_min: float) -> bool:
    return (
        route.status == RouteStatus.PLANNED
        and route.planned_start is not None
        and now - route.planned_start > timedelta(minutes=limit_min)
    )


def sweep(organization_id: int, now: datetime) -> tuple[int, int]:
    open_alerts = open_subjects(KIND)
    # Both sets in one statement: planned routes whose start has passed, and the routes of
    # the open alerts (to clear the ones that started).
    routes = Route.objects.filter(
        status=RouteStatus.PLANNED,
        planned_start__lte=now,
        planned_start__gte=now - LOOKBACK,
    ) | Route.objects.filter(pk__in=[int(s) for s in open_alerts])
    raised = cleared = 0
    holding = []
    for route in routes:
        subject = str(route.pk)
        limit = thresholds_for(organization_id, route.carrier_id).route_not_started_min
        late = is_late_to_start(route, now, limit)
        if late and subject not in open_alerts:
            alert_raise(
                organization_id=organization_id,
                kind=KIND,
                subject_type="route",
                subject_id=subject,
                severity=Severity.MEDIUM,
                started_at=route.planned_start,
                title=f"{route.code}: not started {limit} min after its planned start",
                detail={"planned_start": route.planned_start.isoformat(), "limit_min": limit},
                route=route,
                carrier_id=route.carrier_id,
            )
            raised += 1
        elif late:
            holding.append(subject)
        elif route.status != RouteStatus.PLANNED and subject in open_alerts:
            clear_route_alert(organization_id, KIND, subject, f"route {route.status}")
            cleared += 1
    refresh_seen(KIND, open_alerts, holding)
    return raised, cleared
