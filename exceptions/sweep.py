"""The time-based rules, evaluated every EXCEPTIONS_SWEEP_S seconds (beat), organization by
organization: one set-based snapshot of the running routes feeds signal_lost, stalled,
off_route and battery_low; route_not_started reads the planned routes and long_dwell the
arrived stops; then escalation. Each rule raises only what is new and clears only what is
open, so an unchanged fleet costs a fixed number of queries however many routes it has."""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from exceptions.rules import (
    battery_low,
    long_dwell,
    off_route,
    route_not_started,
    signal_lost,
    stalled,
)
from exceptions.rules.common import running_routes
from exceptions.services import alerts_escalate

logger = logging.getLogger(__name__)


def sweep_organization(organization: Organization, now: datetime | None = None) -> dict:
    """Evaluate every time-based rule for one organization. Returns {kind: [raised, cleared]}
    plus how many alerts escalated."""
    now = now or timezone.now()
    with organization_scope(organization):
        routes = running_routes(organization.pk, now)
        counts = {
            signal_lost.KIND: signal_lost.sweep(organization.pk, routes, now),
            stalled.KIND: stalled.sweep(organization.pk, routes, now),
            battery_low.KIND: battery_low.sweep(organization.pk, routes, now),
            route_not_started.KIND: route_not_started.sweep(organization.pk, now),
            off_route.KIND: off_route.sweep(organization.pk, routes, now),
            long_dwell.KIND: long_dwell.sweep(organization, now),
        }
        counts["escalated"] = alerts_escalate(now, organization_id=organization.pk)
    return counts


def sweep_all(now: datetime | None = None) -> int:
    """Every active organization, each in its own scope. Returns how many alerts changed."""
    changed = 0
    for organization in Organization.objects.filter(is_active=True):
        try:
            counts = sweep_organization(organization, now)
        except Exception:  # one tenant's bad row must not stop the others' alerts
            logger.exception("exceptions sweep failed for organization %s", organization.pk)
            continue
        escalated = counts.pop("escalated")
        changed += escalated + sum(raised + cleared for raised, cleared in counts.values())
    return changed
