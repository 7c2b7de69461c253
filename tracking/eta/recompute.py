"""Keeping stored ETAs current: recompute a route's windows, store them, keep a revision and
announce only material moves; and pick the routes that need it (the sweep). The estimation itself
is in `engine.py`."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from control_tower.realtime import publish_on_commit
from tracking.eta.engine import ETA_REFRESH_S, METHOD, OPEN, route_etas
from tracking.models import DevicePosition, EtaRevision, Route, RouteStatus, Stop


def route_eta_update(route: Route, *, now: datetime | None = None) -> int:
    """Store fresh ETAs on the route's open stops; keep a revision and announce the change only
    when a window moved by more than ETA_MATERIAL_CHANGE_S. Returns how many moved."""
    now = now or timezone.now()
    if route.status not in (RouteStatus.PLANNED, RouteStatus.IN_PROGRESS):
        return 0
    etas = route_etas(route, now=now)
    threshold = timedelta(seconds=settings.ETA_MATERIAL_CHANGE_S)
    moved = 0
    with transaction.atomic():
        stops = {
            s.pk: s
            for s in Stop.objects.select_for_update().filter(pk__in=[e.stop_id for e in etas])
        }
        revisions = []
        for estimate in etas:
            stop = stops[estimate.stop_id]
            material = (
                stop.eta is None
                or abs(stop.eta - estimate.eta) > threshold
                or abs(stop.eta_latest - estimate.latest) > threshold
            )
            stop.eta, stop.eta_earliest = estimate.eta, estimate.earliest
            stop.eta_latest, stop.eta_updated_at = estimate.latest, now
            if material:
                moved += 1
                revisions.append(
                    EtaRevision(
                        organization_id=stop.organization_id,
                        stop=stop,
                        computed_at=now,
                        eta=estimate.eta,
                        earliest=estimate.earliest,
                        latest=estimate.latest,
                        method=METHOD,
                    )
                )
                publish_on_commit(
                    organization_id=stop.organization_id,
                    carrier_id=route.carrier_id,
                    event="stop.eta",
                    data={
                        "id": stop.pk,
                        "route": route.pk,
                        "sequence": stop.sequence,
                        "eta": estimate.eta.isoformat(),
                        "earliest": estimate.earliest.isoformat(),
                        "latest": estimate.latest.isoformat(),
                    },
                )
        Stop.objects.bulk_update(
            stops.values(), ["eta", "eta_earliest", "eta_latest", "eta_updated_at"]
        )
        EtaRevision.objects.bulk_create(revisions)
    return moved


def routes_needing_eta(now: datetime | None = None):
    """Today's active routes whose vehicle reported since their ETAs were last computed (the
    debounced "recompute on new pings"), that have none yet, or whose ETAs went stale. One
    query for all routes: the sweep runs every few seconds."""
    now = now or timezone.now()
    open_stops = Stop.objects.filter(route=OuterRef("pk"), status__in=OPEN)
    active = (
        Route.objects.filter(
            status__in=(RouteStatus.PLANNED, RouteStatus.IN_PROGRESS),
            date__gte=(now - timedelta(days=1)).date(),
            date__lte=(now + timedelta(days=1)).date(),
        )
        .select_related("hub")
        .annotate(
            has_open=Exists(open_stops),
            last_eta=Subquery(open_stops.order_by("eta_updated_at").values("eta_updated_at")[:1]),
            behind_clock=Exists(open_stops.filter(eta__lt=now)),
            reported=Exists(
                DevicePosition.objects.filter(
                    device__driver_id=OuterRef("driver_id"), received_at__gt=OuterRef("last_eta")
                )
            ),
        )
    )
    for route in active:
        if not route.has_open:
            continue
        if route.last_eta is None:
            yield route
            continue
        # Without news the windows still age: a stop's ETA must never fall behind the clock.
        stale = route.last_eta < now - timedelta(seconds=ETA_REFRESH_S) or route.behind_clock
        if route.reported or stale:
            yield route
