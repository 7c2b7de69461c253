"""The one place a report's rows are narrowed: to the actor (carrier scope) and the filters."""

from __future__ import annotations

from django.db.models import QuerySet

from carriers.sla.types import ReportFilters
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to


def narrowed(actor: Actor | None, model, filters: ReportFilters) -> QuerySet:
    """`model` (a fact or roll-up) rows of the period, narrowed to the actor and the filters."""
    rows = visible_to(actor, model).filter(day__gte=filters.date_from, day__lte=filters.date_to)
    if filters.carrier_ids:
        rows = rows.filter(carrier_id__in=filters.carrier_ids)
    if filters.hub_ids:
        rows = rows.filter(hub_id__in=filters.hub_ids)
    if filters.regions:
        rows = rows.filter(region__in=filters.regions)
    if filters.service_types:
        rows = rows.filter(service_type__in=filters.service_types)
    if filters.driver_ids:
        rows = rows.filter(driver_id__in=filters.driver_ids)
    return rows
