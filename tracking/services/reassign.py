"""Moving an open stop to another route (the dispatcher's "reassign stop" action).

`stop_reassign` locks both routes in id order (so two opposite reassignments cannot deadlock),
then the stop and its shipments. It takes the stop off its route and renumbers what is left;
inserts it into the target route at the given position or at the cheapest insertion point by
road travel time; re-plans both routes' geometry, distance, duration and planned arrivals the
way route planning does; moves the shipments to the target's carrier; appends one `handoff`
entry per shipment to the chain of custody. After commit: an ETA recompute for both routes,
`route.changed` for both and `stop.status` for every stop whose sequence or route changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from control_tower.errors import Conflict
from control_tower.events import catalog, emit
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import is_visible
from control_tower.tenancy.enqueue import enqueue_on_commit
from tracking.errors import InvalidInput, NotFound
from tracking.eta.triggers import ETA_UPDATE_ROUTE
from tracking.models import (
    ACTIVE_ROUTE_STATUSES,
    UNVISITED_STOP_STATUSES,
    Route,
    Shipment,
    Stop,
    StopStatus,
)
from tracking.models import ShipmentStatus as S
from tracking.roads.routing import route_path, travel_matrix
from tracking.services.custody import Custodian, CustodyKind, custody_append
from tracking.services.stops import emit_stop_status

REASSIGNABLE_ROUTE_STATUSES = ACTIVE_ROUTE_STATUSES
# Stops a vehicle does not drive to: left out of the re-planned geometry.
NOT_VISITED = UNVISITED_STOP_STATUSES


@dataclass(frozen=True)
class Reassignment:
    stop: Stop
    from_route: Route
    to_route: Route
    position: int  # 1-based among the target's open stops, as chosen
    insertion_cost_s: int | None  # extra driving of the cheapest insertion; None: position given


def _invalid(field: str, message: str, code: str = "validation_error") -> InvalidInput:
    return InvalidInput(message, fields={field: [message]}, code=code)


def _route_label(route: Route) -> dict:
    return {
        "id": route.pk,
        "code": route.code,
        "carrier": route.carrier_id,
        "vehicle": route.vehicle_id,
        "driver": route.driver_id,
    }


def open_tail(stops: list[Stop]) -> int:
    """Index where the open part of a route starts: after its last stop that is not pending
    (finished, or arrived: the vehicle is there now). A pending stop before it stays put."""
    anchor = -1
    for index, stop in enumerate(stops):
        if stop.status != StopStatus.PENDING:
            anchor = index
    return anchor + 1


def cheapest_slot(route: Route, stops: list[Stop], first_slot: int, stop: Stop) -> tuple[int, int]:
    """(slot index into `stops`, extra seconds) of the cheapest place for `stop` among the open
    slots, by road travel time: prev → new → next instead of prev → next. The route starts and
    ends at its hub (as planned); the first open slot follows the last finished stop."""
    tail = stops[first_slot:]
    start = stops[first_slot - 1].location if first_slot > 0 else route.hub.location
    points = [route.hub.location, start, *(s.location for s in tail), stop.location]
    durations = travel_matrix(points).durations_s
    new = len(points) - 1
    sequence = [1, *range(2, 2 + len(tail)), 0]  # matrix indexes: start, open stops, hub
    best = None
    for offset in range(len(tail) + 1):
        before, after = sequence[offset], sequence[offset + 1]
        extra = durations[before][new] + durations[new][after] - durations[before][after]
        if best is None or extra < best[1]:
            best = (first_slot + offset, extra)
    return best


def _replan(route: Route, stops: list[Stop]) -> list[str]:
    """Geometry, distance, duration and end of the route through its visited stops (hub → stops
    → hub, like `plan_routes`), and planned arrivals of its open stops: from the last finished
    stop (or the planned start) along the road, waiting for a window to open. Returns the
    changed Stop fields."""
    visited = [s for s in stops if s.status not in NOT_VISITED]
    if visited:
        path = route_path([route.hub.location, *(s.location for s in visited), route.hub.location])
        route.planned_geometry = path.geometry
        route.planned_distance_m = round(path.length_m)
        route.planned_duration_s = round(
            path.duration_s + sum(s.planned_service_s for s in visited)
        )
    else:
        route.planned_geometry, route.planned_distance_m, route.planned_duration_s = None, 0, 0
    if route.planned_start is not None:
        route.planned_end = route.planned_start + timedelta(seconds=route.planned_duration_s)
    first_open = open_tail(stops)
    open_stops = [s for s in stops[first_open:] if s.status not in NOT_VISITED]
    if not open_stops:
        return []
    previous = stops[first_open - 1] if first_open > 0 else None
    if previous is not None and previous.planned_arrival is not None:
        clock = previous.planned_arrival + timedelta(seconds=previous.planned_service_s)
        here = previous.location
    elif previous is None and route.planned_start is not None:
        clock, here = route.planned_start, route.hub.location
    else:
        return []  # no plan to continue from: ETAs carry the timing
    from tracking.roads.routing import leg_durations

    legs = leg_durations([here, *(s.location for s in open_stops)])
    for stop, leg in zip(open_stops, legs, strict=True):
        clock = clock + timedelta(seconds=round(leg))
        if stop.window_start is not None and clock < stop.window_start:
            clock = stop.window_start
        stop.planned_arrival = clock
        clock = clock + timedelta(seconds=stop.planned_service_s)
    return ["planned_arrival"]


def _custodian(shipment: Shipment, route: Route) -> str | None:
    """A parcel already out for delivery changes hands with the stop; one still at the hub
    stays with whoever holds it (None keeps the previous custodian)."""
    if shipment.status != S.OUT_FOR_DELIVERY:
        return None
    if route.driver_id:
        return Custodian.driver(route.driver_id, route.driver.name)
    return Custodian.carrier(route.carrier.code)


def _announce(stop_moves: list[Stop], routes: list[Route]) -> None:
    for route in routes:
        enqueue_on_commit(
            ETA_UPDATE_ROUTE, organization_id=route.organization_id, route_id=route.pk
        )
    for stop in stop_moves:
        emit_stop_status(stop)
    for route in routes:
        emit(catalog.route_changed(route, reason="reassigned"))


@transaction.atomic
def stop_reassign(
    *, actor: Actor, stop: Stop, to_route: Route, position: int | None = None
) -> Reassignment:
    """Move a pending stop (and its shipments) to `to_route`.

    Raises 400 (same route, position out of range), 404 (the target is not in the actor's
    organization or carrier), 409 (the stop is no longer pending, or a route is not planned
    or in progress). Nothing is stored when it raises.
    """
    stop, source, target = _lock(actor, stop, to_route)
    _check_open(stop, source, target)
    source_stops = [s for s in source.stops.order_by("sequence", "pk") if s.pk != stop.pk]
    target_stops = list(target.stops.order_by("sequence", "pk"))
    slot, chosen, cost = _choose_slot(target, target_stops, stop, position)
    moved = _move_and_replan(stop, source, target, source_stops, target_stops, slot)
    _hand_over(actor, stop, source, target)
    _announce(moved, [source, target])
    return Reassignment(
        stop=stop, from_route=source, to_route=target, position=chosen, insertion_cost_s=cost
    )


def _lock(actor: Actor, stop: Stop, to_route: Route) -> tuple[Stop, Route, Route]:
    """Lock both routes and the stop; return the fresh stop, its route and the target."""
    if stop.organization_id != actor.organization.pk or (
        to_route.organization_id != actor.organization.pk
    ):
        raise NotFound("No such route or stop in your organization.")
    if stop.route_id == to_route.pk:
        raise _invalid("route", "The stop is already on that route.", code="same_route")
    # Lock order: both routes in id order, then the stop, then the shipments. The routes come
    # first because renumbering writes every stop of both routes: a lock on a route guards its
    # stops, so two reassignments between the same routes queue instead of deadlocking.
    routes = {
        r.pk: r
        for r in Route.objects.select_for_update(of=("self",))
        .select_related("hub", "carrier", "driver")
        .filter(pk__in=sorted({stop.route_id, to_route.pk}))
        .order_by("pk")
    }
    stop = Stop.objects.select_for_update(of=("self",)).filter(pk=stop.pk).first()
    if stop is None or stop.route_id not in routes:
        raise Conflict("The stop was changed meanwhile; reload it and try again.", code="stale")
    if stop.route_id == to_route.pk:
        raise _invalid("route", "The stop is already on that route.", code="same_route")
    if to_route.pk not in routes:
        raise NotFound("No such route in your organization.")
    source, target = routes[stop.route_id], routes[to_route.pk]
    if not (is_visible(actor, source) and is_visible(actor, target)):
        raise NotFound("No such route for your carrier.")
    return stop, source, target


def _check_open(stop: Stop, source: Route, target: Route) -> None:
    """Only a pending stop moves, and only between planned or in-progress routes (409)."""
    if stop.status != StopStatus.PENDING:
        raise Conflict(
            f"The stop is {stop.get_status_display().lower()}: only a pending stop can be "
            "reassigned.",
            code="stop_not_open",
        )
    for route, role in ((source, "Its route"), (target, "The target route")):
        if route.status not in REASSIGNABLE_ROUTE_STATUSES:
            raise Conflict(
                f"{role} {route.code} is {route.get_status_display().lower()}: only planned or "
                "in-progress routes can change.",
                code="route_closed",
            )


def _choose_slot(
    target: Route, target_stops: list[Stop], stop: Stop, position: int | None
) -> tuple[int, int, int | None]:
    """(slot index into `target_stops`, 1-based position among its open stops, extra driving
    seconds or None): the given position, or the cheapest insertion."""
    first_slot = open_tail(target_stops)
    open_count = len(target_stops) - first_slot
    cost = None
    if position is not None:
        if not 1 <= position <= open_count + 1:
            raise _invalid(
                "position",
                f"Choose a position from 1 to {open_count + 1} (the target has {open_count} "
                "open stop(s)).",
            )
        slot = first_slot + position - 1
    else:
        slot, cost = cheapest_slot(target, target_stops, first_slot, stop)
    return slot, slot - first_slot + 1, cost


def _move_and_replan(
    stop: Stop,
    source: Route,
    target: Route,
    source_stops: list[Stop],
    target_stops: list[Stop],
    slot: int,
) -> list[Stop]:
    """Put `stop` at `slot` of the target, renumber both routes, re-plan both and store it all.
    Returns the stops whose route or sequence changed (to announce)."""
    old_sequence = {s.pk: s.sequence for s in [*source_stops, *target_stops]}
    old_sequence[stop.pk] = None  # always announced: its route changed
    stop.route = target
    stop.eta = stop.eta_earliest = stop.eta_latest = stop.eta_updated_at = None
    target_stops.insert(slot, stop)
    for route, stops in ((source, source_stops), (target, target_stops)):
        for number, item in enumerate(stops, start=1):
            item.sequence = number
            item.route = route
    stop_fields = ["route", "sequence", "eta", "eta_earliest", "eta_latest", "eta_updated_at"]
    for route, stops in ((source, source_stops), (target, target_stops)):
        stop_fields += [f for f in _replan(route, stops) if f not in stop_fields]
        route.save(
            update_fields=[
                "planned_geometry",
                "planned_distance_m",
                "planned_duration_s",
                "planned_end",
            ]
        )
    # The sequence constraint is deferred: renumbering in any order is fine until commit.
    now = timezone.now()
    for item in [*source_stops, *target_stops]:
        item.updated_at = now  # bulk_update does not touch auto_now fields by itself
    Stop.objects.bulk_update([*source_stops, *target_stops], [*stop_fields, "updated_at"])
    return [s for s in [*source_stops, *target_stops] if old_sequence[s.pk] != s.sequence]


def _hand_over(actor: Actor, stop: Stop, source: Route, target: Route) -> None:
    """Shipments follow the route's carrier; each chain of custody records the reassignment."""
    shipments = list(
        Shipment.objects.select_for_update(of=("self",))
        .filter(stop_shipments__stop=stop)
        .select_related("carrier")
        .order_by("pk")
    )
    for shipment in shipments:
        if shipment.carrier_id != target.carrier_id:
            shipment.carrier_id = target.carrier_id
            shipment.save(update_fields=["carrier", "updated_at"])
        custody_append(
            shipment=shipment,
            kind=CustodyKind.HANDOFF,
            actor=actor.label,
            custodian=_custodian(shipment, target),
            details={
                "action": "reassigned",
                "stop": stop.pk,
                "from_route": _route_label(source),
                "to_route": _route_label(target),
            },
        )
