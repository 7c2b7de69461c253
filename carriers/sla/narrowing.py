"""The one place a report's rows are narrowed: to the actor (carrier scope) and the filters."""

from __future__ import annotations

from django.db.models import QuerySet

from carriers.sla.types import ReportFilters
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to

# How each filter reaches a row: the facts and roll-ups carry the columns themselves; a stop
# reaches them through its route (the ETA accuracy report reads stops).
FACT_PATHS = {
    "carrier": "carrier_id",
    "hub": "hub_id",
    "region": "region",
    "service_type": "service_type",
    "driver": "driver_id",
}
STOP_PATHS = {
    "carrier": "route__carrier_id",
    "hub": "route__hub_id",
    "region": "route__hub__region",
    "service_type": "shipments__service_type",
    "driver": "route__driver_id",
}


def narrow(rows: QuerySet, filters: ReportFilters, paths: dict[str, str] = FACT_PATHS) -> QuerySet:
    """`rows` narrowed to the filters' carriers, hubs, regions, service types and drivers."""
    for name, values in (
        ("carrier", filters.carrier_ids),
        ("hub", filters.hub_ids),
        ("region", filters.regions),
        ("service_type", filters.service_types),
        ("driver", filters.driver_ids),
    ):
        if values:
            rows = rows.filter(**{f"{paths[name]}__in": values})
    return rows


def narrowed(actor: Actor | None, model, filters: ReportFilters) -> QuerySet:
    """`model` (a fact or roll-up) rows of the period, narrowed to the actor and the filters."""
    rows = visible_to(actor, model).filter(day__gte=filters.date_from, day__lte=filters.date_to)
    return narrow(rows, filters)
