"""Tracking tasks (thin: call a service)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from celery import shared_task
from django.utils import timezone

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from control_tower.tenancy.tasks import organization_task
from tracking.eta.bulk import BATCH_MAX, active_routes, routes_eta_update
from tracking.eta.calibration import train_and_calibrate
from tracking.eta.conformal_store import conformal_calibrate
from tracking.eta.recompute import route_eta_update, routes_needing_eta
from tracking.eta.triggers import (
    ETA_BURST,
    ETA_UPDATE_ROUTE,
    burst_started,
    kick_burst,
    routes_claim,
    take_due,
)
from tracking.ingest.partitions import maintain_ping_partitions as _maintain
from tracking.models import Route

logger = logging.getLogger(__name__)


@shared_task(name="tracking.maintain_ping_partitions", ignore_result=True)
def maintain_ping_partitions() -> dict:
    """Hourly (beat): partitions ahead, retention applied. Spans all organizations by design:
    it works on the table's structure, not on any one tenant's data."""
    return _maintain()


@organization_task(name=ETA_UPDATE_ROUTE, ignore_result=True)
def eta_update_route(*, organization, route_id: int, ping_received_at: str | None = None) -> int:
    """Recompute one route's ETAs now (stop events, plan changes, a ping: see
    tracking/eta/triggers.py). Idempotent. When a ping triggered it, logs how long after that
    ping was received the ETAs were stored (`ping_to_eta_ms`, read by bench/eta_latency.py)."""
    route = Route.objects.select_related("hub").filter(pk=route_id).first()
    moved = 0 if route is None else route_eta_update(route)
    if route is not None and ping_received_at:
        lag = timezone.now() - datetime.fromisoformat(ping_received_at)
        logger.info(
            "eta stored route=%s ping_received_at=%s ping_to_eta_ms=%.1f",
            route_id,
            ping_received_at,
            lag.total_seconds() * 1000,
        )
    return moved


# A burst task hands over after this long (another is queued if routes are still due), so one
# organization's backlog never holds a worker process away from everything else for long.
BURST_MAX_S = 10.0


@organization_task(name=ETA_BURST, ignore_result=True)
def eta_burst(*, organization) -> int:
    """Recompute every route of the organization that pings made due (tracking/eta/triggers.py),
    in batches of up to BATCH_MAX, until none is left. While routes are still due after a batch,
    another burst task is queued, so an idle worker process shares the backlog. Logs, per route,
    how long after its triggering ping its ETAs were stored (`ping_to_eta_ms`, read by
    bench/eta_latency.py). Returns how many routes were recomputed."""
    burst_started(organization.pk)
    started, done = time.monotonic(), 0
    while True:
        due, left = take_due(organization.pk, BATCH_MAX)
        if not due:
            return done
        if left:
            kick_burst(organization.pk)
        routes = active_routes(organization.pk, [route_id for route_id, _at in due])
        routes_eta_update(routes)
        stored_at = timezone.now()
        for route_id, received in due:
            received_at = datetime.fromtimestamp(received, UTC)
            logger.info(
                "eta stored route=%s ping_received_at=%s ping_to_eta_ms=%.1f",
                route_id,
                received_at.isoformat(),
                (stored_at - received_at).total_seconds() * 1000,
            )
        done += len(due)
        if time.monotonic() - started > BURST_MAX_S:
            kick_burst(organization.pk)
            return done


@shared_task(name="tracking.eta_sweep", ignore_result=True)
def eta_sweep() -> int:
    """Every ETA_SWEEP_S seconds (beat): routes with no ETAs or stale ones, and routes whose
    vehicle reported after a recompute two debounce windows ago (the trailing edge of the ping
    trigger), organization by organization, each in its own scope. A route whose window a ping
    has just closed is skipped (the next sweep sees it again)."""
    updated = 0
    for organization in Organization.objects.filter(is_active=True):
        with organization_scope(organization):
            routes = list(routes_needing_eta())
            try:
                claimed = set(
                    routes_claim(organization_id=organization.pk, route_ids=[r.pk for r in routes])
                )
            except Exception:  # noqa: BLE001 - without Redis the sweep recomputes them all
                logger.warning("ETA debounce unavailable; sweeping every route", exc_info=True)
                claimed = {r.pk for r in routes}
            mine = [route for route in routes if route.pk in claimed]
            for start in range(0, len(mine), BATCH_MAX):
                routes_eta_update(mine[start : start + BATCH_MAX])
            updated += len(mine)
    return updated


@shared_task(name="tracking.eta_retrain", ignore_result=True)
def eta_retrain() -> int:
    """Nightly (beat): each organization's ETA model on its last 28 days and the calibration of
    its windows on the last 14, which the live ETAs then use (idempotent: unchanged history
    gives back the same model and calibration)."""
    trained = 0
    for organization in Organization.objects.filter(is_active=True):
        with organization_scope(organization):
            model, _calibration = train_and_calibrate(organization)
            trained += model is not None
    return trained


@shared_task(name="tracking.eta_conformal", ignore_result=True)
def eta_conformal() -> int:
    """Every ETA_CONFORMAL_S seconds (beat): each organization's adaptive conformal windows on
    the ETAs shown over the last days against the actual arrivals (tracking/eta/conformal.py),
    stored as its newest calibration when they changed. Returns how many organizations have
    conformal windows."""
    stored = 0
    for organization in Organization.objects.filter(is_active=True):
        with organization_scope(organization):
            stored += conformal_calibrate(organization) is not None
    return stored
