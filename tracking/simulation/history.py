"""Past days, quickly: what the hidden world makes of a day's routes, applied through the same
services the API uses (start, arrive, complete or fail each stop, complete the route) at the
times it happened. So the ETA model and the SLA reports have history to learn from: real
arrivals, dwell and transit times on the road network, failed attempts.

History is not sent over HTTP and stores no pings (weeks of fixes would be millions of rows
nobody reads); the stop times are what history is for. Live days use the runner.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import Max

from control_tower.events import backfill
from control_tower.tenancy.scope import organization_scope
from tracking.models import OPEN_STOP_STATUSES, FailureReason, Route, RouteStatus, Stop
from tracking.services.routes import route_complete, route_start
from tracking.services.stops import stop_arrive, stop_complete, stop_fail
from tracking.simulation.runner import build_timelines
from tracking.simulation.world import World


def replay_day(organization, day: date, world: World, *, start: datetime | None = None) -> dict:
    """Play a past day's remaining routes out as the world says. Returns counts."""
    from django.db import transaction

    counts = {"routes": 0, "delivered": 0, "failed": 0}
    with organization_scope(organization):
        actor = None  # recorded as "system": nobody pressed these buttons
        routes = Route.objects.filter(date=day).order_by("planned_start")
        first = routes.values_list("planned_start", flat=True).first()
        if first is None:
            return counts
        for route, _plans, timeline in build_timelines(
            organization, day, start or first, world, interval_s=60
        ):
            # Recorded after the fact: the events feed reports and history, not alerts.
            with backfill(), transaction.atomic():
                route_start(route=route, actor=actor, at=timeline.start)
                for truth in timeline.stops:
                    stop = Stop.objects.get(pk=truth.stop_id)
                    stop_arrive(stop=stop, actor=actor, at=truth.arrival)
                    if truth.outcome == "delivered":
                        stop_complete(stop=stop, actor=actor, at=truth.departure)
                        counts["delivered"] += 1
                    else:
                        stop_fail(
                            stop=stop,
                            reason=FailureReason.NOT_HOME,
                            actor=actor,
                            at=truth.departure,
                            note="Simulated history",
                        )
                        counts["failed"] += 1
                route_complete(route=Route.objects.get(pk=route.pk), actor=actor, at=timeline.end)
            counts["routes"] += 1
        # Routes already driven to their last stop (before the replay) only need closing.
        for route in Route.objects.filter(date=day, status=RouteStatus.IN_PROGRESS):
            if not route.stops.filter(status__in=OPEN_STOP_STATUSES).exists():
                last = route.stops.aggregate(last=Max("actual_departure"))["last"]
                with backfill():
                    route_complete(route=route, actor=actor, at=last)
                counts["routes"] += 1
    return counts
