"""Which shipments are handed over at which stop: the one place that links them.

Every path that puts a shipment on a route goes through here or through
`shipments_on_open_routes`: the stops API, a day's plan (`route_plan_create`) and the solver
(`plan_routes`). The rule they share: a shipment is on at most one open route (an open stop of
a planned or in-progress route), so a parcel is never promised to two drivers.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from control_tower.events import catalog, emit
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.enqueue import enqueue_on_commit
from tracking.errors import InvalidInput
from tracking.eta.triggers import ETA_UPDATE_ROUTE
from tracking.models import (
    ACTIVE_ROUTE_STATUSES,
    OPEN_STOP_STATUSES,
    Route,
    Shipment,
    Stop,
    StopShipment,
)
from tracking.services.custody import CustodyKind, custody_append
from tracking.services.shipments import FINAL_STATUSES

# A route still driving or about to: the models' one definition under the name this rule uses.
OPEN_ROUTE_STATUSES = ACTIVE_ROUTE_STATUSES


def shipments_on_open_routes(
    shipment_ids: Iterable[int], *, except_stop_id: int | None = None
) -> dict[int, str]:
    """`{shipment id: route code}` for those of `shipment_ids` already on an open stop of an
    open route (other than `except_stop_id`, the stop being edited)."""
    ids = set(shipment_ids)
    if not ids:
        return {}
    links = StopShipment.objects.filter(
        shipment_id__in=ids,
        stop__status__in=OPEN_STOP_STATUSES,
        stop__route__status__in=OPEN_ROUTE_STATUSES,
    )
    if except_stop_id is not None:
        links = links.exclude(stop_id=except_stop_id)
    return dict(links.values_list("shipment_id", "stop__route__code"))


def link_problems(route: Route, shipments: list[Shipment], *, except_stop_id=None) -> list[str]:
    """Why these shipments may not be handed over at a stop of `route` (empty: they may)."""
    problems = []
    if route.status not in OPEN_ROUTE_STATUSES:
        problems.append(f"Route {route.code} is {route.status}.")
    on_open = shipments_on_open_routes((s.pk for s in shipments), except_stop_id=except_stop_id)
    for shipment in shipments:
        if shipment.organization_id != route.organization_id:
            problems.append(f"Shipment {shipment.pk} does not exist.")
            continue
        if shipment.status in FINAL_STATUSES:
            problems.append(f"Shipment {shipment.reference} is {shipment.status}.")
        if shipment.pk in on_open:
            problems.append(
                f"Shipment {shipment.reference} is already on an open route "
                f"({on_open[shipment.pk]})."
            )
    return problems


@transaction.atomic
def stop_shipments_set(*, stop: Stop, shipments: Iterable[Shipment], actor: Actor | None) -> Stop:
    """Make `shipments` exactly the ones handed over at `stop`.

    Refuses (nothing changes) when the route is finished, a shipment is final, of another
    organization or already on another open route. Each shipment put on or taken off the stop
    gets a chain-of-custody entry (the custodian does not change: the parcel has not moved
    yet). After commit the route's ETAs are recomputed and `route.changed` is pushed.
    """
    wanted = {s.pk: s for s in shipments}
    # Route, then stop, then shipments: the order stop events and reassignments lock in.
    route = Route.objects.select_for_update(of=("self",)).get(pk=stop.route_id)
    stop = Stop.objects.select_for_update(of=("self",)).select_related("route").get(pk=stop.pk)
    current = set(StopShipment.objects.filter(stop=stop).values_list("shipment_id", flat=True))
    added_ids = sorted(set(wanted) - current)
    removed_ids = sorted(current - set(wanted))
    locked = {
        s.pk: s
        for s in Shipment.objects.select_for_update(of=("self",))
        .filter(pk__in=[*added_ids, *removed_ids])
        .order_by("pk")
    }
    added = [locked.get(pk, wanted[pk]) for pk in added_ids]
    problems = link_problems(route, added, except_stop_id=stop.pk)
    if removed_ids and route.status not in OPEN_ROUTE_STATUSES and not problems:
        problems.append(f"Route {route.code} is {route.status}.")
    if problems:
        raise InvalidInput(" ".join(problems), fields={"shipments": problems})
    if not added_ids and not removed_ids:
        return stop
    StopShipment.objects.filter(stop=stop, shipment_id__in=removed_ids).delete()
    StopShipment.objects.bulk_create(
        [StopShipment(organization_id=stop.organization_id, stop=stop, shipment=s) for s in added]
    )
    label = actor.label if actor is not None else "system"
    where = {"stop": stop.pk, "route": route.code, "date": route.date.isoformat()}
    for action, ids in (("put_on_route", added_ids), ("taken_off_route", removed_ids)):
        for pk in ids:
            custody_append(
                shipment=locked[pk],
                kind=CustodyKind.ROUTE,
                actor=label,
                details={"action": action, **where},
            )
    _announce(route)
    return stop


def _announce(route: Route) -> None:
    # What the route carries changed: its remaining ETAs are recomputed from the new stops.
    enqueue_on_commit(ETA_UPDATE_ROUTE, organization_id=route.organization_id, route_id=route.pk)
    # The route's line in the console (stop and parcel counts) changed.
    emit(catalog.route_changed(route, reason="shipments"))
