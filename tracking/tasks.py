"""Tracking tasks (thin: call a service)."""

from __future__ import annotations

from celery import shared_task

from control_tower.tenancy.tasks import organization_task
from tracking.ingest.partitions import maintain_ping_partitions as _maintain


@shared_task(name="tracking.maintain_ping_partitions", ignore_result=True)
def maintain_ping_partitions() -> dict:
    """Hourly (beat): partitions ahead, retention applied. Spans all organizations by design:
    it works on the table's structure, not on any one tenant's data."""
    return _maintain()


@organization_task(name="tracking.eta_update_route", ignore_result=True)
def eta_update_route(*, organization, route_id: int) -> int:
    """Recompute one route's ETAs now (stop events, plan changes). Idempotent."""
    from tracking.eta.recompute import route_eta_update
    from tracking.models import Route

    route = Route.objects.select_related("hub").filter(pk=route_id).first()
    return 0 if route is None else route_eta_update(route)


@shared_task(name="tracking.eta_sweep", ignore_result=True)
def eta_sweep() -> int:
    """Every ETA_SWEEP_S seconds (beat): routes whose vehicle reported since their last ETA,
    organization by organization, each in its own scope."""
    from control_tower.models import Organization
    from control_tower.tenancy.scope import organization_scope
    from tracking.eta.recompute import route_eta_update, routes_needing_eta

    updated = 0
    for organization in Organization.objects.filter(is_active=True):
        with organization_scope(organization):
            for route in routes_needing_eta():
                route_eta_update(route)
                updated += 1
    return updated


@shared_task(name="tracking.eta_retrain", ignore_result=True)
def eta_retrain() -> int:
    """Nightly (beat): each organization's ETA model on its last 28 days (idempotent: unchanged
    history gives back the same model)."""
    from control_tower.models import Organization
    from control_tower.tenancy.scope import organization_scope
    from tracking.eta.learning import train

    trained = 0
    for organization in Organization.objects.filter(is_active=True):
        with organization_scope(organization):
            trained += train(organization) is not None
    return trained
