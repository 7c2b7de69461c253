"""Route plans and the route life cycle."""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from control_tower.errors import Conflict, IllegalTransition
from control_tower.realtime import publish_on_commit
from control_tower.tenancy.actors import Actor
from portal.events import publish_route_changed
from tracking.models import (
    OPEN_STOP_STATUSES,
    Route,
    RouteStatus,
    Shipment,
    Stop,
    StopShipment,
    StopStatus,
)
from tracking.models import ShipmentStatus as S
from tracking.services.shipments import SHIPMENT_TRANSITIONS, shipment_transition

ROUTE_TRANSITIONS = {
    RouteStatus.PLANNED: frozenset({RouteStatus.IN_PROGRESS, RouteStatus.CANCELLED}),
    RouteStatus.IN_PROGRESS: frozenset({RouteStatus.COMPLETED, RouteStatus.CANCELLED}),
    RouteStatus.COMPLETED: frozenset(),
    RouteStatus.CANCELLED: frozenset(),
}


@transaction.atomic
def route_plan_create(*, actor: Actor, date: Date, routes: list[dict]) -> list[Route]:
    """Store a day's plan (routes with their stops and shipments) in one transaction.

    Input is validated by the serializer (objects belong to the organization, codes are new,
    each shipment appears once). Shipments without a carrier or hub get the route's.
    """
    organization = actor.organization
    route_rows, stop_rows, links = [], [], []
    for spec in routes:
        stops = spec.pop("stops", [])
        route = Route(organization=organization, date=date, **spec)
        route_rows.append(route)
        for index, stop_spec in enumerate(stops, start=1):
            shipments = stop_spec.pop("shipments", [])
            stop_spec.setdefault("sequence", index)
            stop = Stop(organization=organization, route=route, **stop_spec)
            stop_rows.append(stop)
            links.extend((stop, shipment) for shipment in shipments)
    Route.objects.bulk_create(route_rows)
    for stop in stop_rows:
        stop.route_id = stop.route.pk  # bulk_create filled the pk after the Stop was built
    Stop.objects.bulk_create(stop_rows, batch_size=1000)
    StopShipment.objects.bulk_create(
        [StopShipment(organization=organization, stop=s, shipment=sh) for s, sh in links],
        batch_size=1000,
    )
    _adopt_shipments(links)
    return route_rows


def _adopt_shipments(links) -> None:
    """A shipment put on a route is carried by that route's carrier from that route's hub."""
    for stop, shipment in links:
        fields = []
        if shipment.carrier_id != stop.route.carrier_id:
            shipment.carrier_id = stop.route.carrier_id
            fields.append("carrier")
        if shipment.hub_id is None:
            shipment.hub_id = stop.route.hub_id
            fields.append("hub")
        if fields:
            Shipment.objects.filter(pk=shipment.pk).update(
                **{f"{name}_id": getattr(shipment, f"{name}_id") for name in fields}
            )


def _announce(route: Route) -> None:
    publish_on_commit(
        organization_id=route.organization_id,
        carrier_id=route.carrier_id,
        event="route.status",
        data={
            "id": route.pk,
            "code": route.code,
            "date": route.date.isoformat(),
            "status": route.status,
        },
    )
    publish_route_changed(route)


def _lock_route(route: Route) -> Route:
    return Route.objects.select_for_update(of=("self",)).get(pk=route.pk)


def _move_route(route: Route, to_status: str) -> bool:
    if route.status == to_status:
        return False
    if to_status not in ROUTE_TRANSITIONS[route.status]:
        raise IllegalTransition(
            f"A {route.get_status_display().lower()} route cannot become "
            f"{RouteStatus(to_status).label.lower()}."
        )
    return True


def _route_shipments(route: Route, *, stop_statuses) -> list[Shipment]:
    return list(
        Shipment.objects.filter(
            stop_shipments__stop__route=route, stop_shipments__stop__status__in=stop_statuses
        ).distinct()
    )


@transaction.atomic
def route_start(*, route: Route, actor: Actor | None, at: datetime | None = None) -> Route:
    """Planned → in progress. Shipments on its open stops go out for delivery (those whose
    status does not allow it, e.g. delivered, are left alone)."""
    at = at or timezone.now()
    route = _lock_route(route)
    if not _move_route(route, RouteStatus.IN_PROGRESS):
        return route
    route.status = RouteStatus.IN_PROGRESS
    route.started_at = at
    route.save(update_fields=["status", "started_at"])
    _announce(route)
    for shipment in _route_shipments(route, stop_statuses=OPEN_STOP_STATUSES):
        if S.OUT_FOR_DELIVERY in SHIPMENT_TRANSITIONS[shipment.status]:
            shipment_transition(
                shipment=shipment,
                to_status=S.OUT_FOR_DELIVERY,
                actor=actor,
                at=at,
                source="route",
                note=f"Route {route.code} started",
            )
    return route


@transaction.atomic
def route_complete(*, route: Route, actor: Actor | None, at: datetime | None = None) -> Route:
    """In progress → completed, once no stop is still open."""
    at = at or timezone.now()
    route = _lock_route(route)
    if not _move_route(route, RouteStatus.COMPLETED):
        return route
    open_stops = route.stops.filter(status__in=OPEN_STOP_STATUSES).count()
    if open_stops:
        raise Conflict(
            f"{open_stops} stop(s) are still open: complete, fail or skip them first.",
            code="route_has_open_stops",
        )
    route.status = RouteStatus.COMPLETED
    route.completed_at = at
    route.save(update_fields=["status", "completed_at"])
    _announce(route)
    return route


@transaction.atomic
def route_cancel(*, route: Route, actor: Actor | None, at: datetime | None = None) -> Route:
    """Cancel a route: its open stops are cancelled and parcels already out for delivery go
    back to 'at hub' so they can be planned again."""
    at = at or timezone.now()
    route = _lock_route(route)
    if not _move_route(route, RouteStatus.CANCELLED):
        return route
    shipments = _route_shipments(route, stop_statuses=OPEN_STOP_STATUSES)
    route.stops.filter(status__in=OPEN_STOP_STATUSES).update(status=StopStatus.CANCELLED)
    route.status = RouteStatus.CANCELLED
    route.completed_at = at
    route.save(update_fields=["status", "completed_at"])
    _announce(route)
    for shipment in shipments:
        if shipment.status == S.OUT_FOR_DELIVERY:
            shipment_transition(
                shipment=shipment,
                to_status=S.AT_HUB,
                actor=actor,
                at=at,
                source="route",
                note=f"Route {route.code} cancelled",
            )
    return route
