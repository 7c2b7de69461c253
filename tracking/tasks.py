"""Tracking tasks (thin: call a service)."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.utils import timezone

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from control_tower.tenancy.tasks import organization_task
from tracking.eta.calibration import train_and_calibrate
from tracking.eta.conformal_store import conformal_calibrate
from tracking.eta.recompute import route_eta_update, routes_needing_eta
from tracking.eta.triggers import ETA_UPDATE_ROUTE, routes_claim
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
            for route in routes:
                if route.pk in claimed:
                    route_eta_update(route)
                    updated += 1
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
