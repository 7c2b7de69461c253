"""Route plans and the route life cycle."""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from control_tower.errors import Conflict, IllegalTransition
from control_tower.events import catalog, emit
from control_tower.tenancy.actors import Actor
from tracking.errors import InvalidInput, ItemErrors
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
from tracking.services.shipments import FINAL_STATUSES, SHIPMENT_TRANSITIONS, shipment_transition
from tracking.services.stop_shipments import shipments_on_open_routes

ROUTE_TRANSITIONS = {
    RouteStatus.PLANNED: frozenset({RouteStatus.IN_PROGRESS, RouteStatus.CANCELLED}),
    RouteStatus.IN_PROGRESS: frozenset({RouteStatus.COMPLETED, RouteStatus.CANCELLED}),
    RouteStatus.COMPLETED: frozenset(),
    RouteStatus.CANCELLED: frozenset(),
}


def route_plan_problems(*, organization_id: int, date: Date, routes: list[dict]) -> ItemErrors:
    """Every rule a day's plan must keep, as errors by route index (nothing is raised).

    `routes` are route specs with objects for `hub`, `carrier`, `driver`, `vehicle` and each
    stop's `shipments`; a value that is not an object yet (an id the caller could not resolve,
    already reported by it) is skipped. `route_plan_create` refuses a plan with problems; the
    API calls this too so that one answer lists every problem of the request.
    """
    errors = ItemErrors("routes")
    _check_codes(date, routes, errors)
    for index, route in enumerate(routes):
        _check_route(organization_id, index, route, errors)
    _check_shipments(organization_id, routes, errors)
    return errors


def _check_codes(date: Date, routes: list[dict], errors: ItemErrors) -> None:
    codes = [r["code"] for r in routes]
    taken = set(Route.objects.filter(date=date, code__in=codes).values_list("code", flat=True))
    seen = set()
    for index, code in enumerate(codes):
        if code in taken:
            errors.add(index, "code", f"Route {code} already exists on {date}.")
        if code in seen:
            errors.add(index, "code", f"Route {code} appears twice in this plan.")
        seen.add(code)


def _check_route(organization_id: int, index: int, route: dict, errors: ItemErrors) -> None:
    for name, messages in route_problems(organization_id, route).items():
        for message in messages:
            errors.add(index, name, message)
    sequences = [s.get("sequence") for s in route["stops"] if s.get("sequence")]
    if len(sequences) != len(set(sequences)):
        errors.add(index, "stops", "Two stops share a sequence number.")
    for position, stop in enumerate(route["stops"]):
        if _window_reversed(stop.get("window_start"), stop.get("window_end")):
            errors.add(index, f"stops.{position}", "The window must end after it starts.")


def _window_reversed(start, end) -> bool:
    return start is not None and end is not None and start >= end


def route_problems(
    organization_id: int, fields: dict, *, route: Route | None = None
) -> dict[str, list[str]]:
    """The rules of one route's fields, as `{field: [messages]}`: hub, carrier and crew of the
    organization, driver and vehicle of the route's carrier, the planned start before the
    end. `fields` may hold only the changes to `route`. Values that are not objects yet (ids
    the caller could not resolve, and reported) are skipped."""
    problems: dict[str, list[str]] = {}

    def current(name):
        return fields[name] if name in fields else getattr(route, name, None)

    for name in ("hub", "carrier", "driver", "vehicle"):
        value = fields.get(name)
        if getattr(value, "organization_id", organization_id) != organization_id:
            problems.setdefault(name, []).append(
                f'Invalid pk "{value.pk}" - object does not exist.'
            )
    carrier_id = getattr(current("carrier"), "pk", None)
    for name in ("driver", "vehicle"):
        member = current(name)
        if (
            hasattr(member, "carrier_id")
            and carrier_id is not None
            and member.carrier_id != carrier_id
        ):
            problems.setdefault(name, []).append("Belongs to another carrier.")
    if _window_reversed(current("planned_start"), current("planned_end")):
        problems.setdefault("planned_end", []).append("Must be after the start of the window.")
    return problems


def _check_shipments(organization_id: int, routes: list[dict], errors: ItemErrors) -> None:
    """Each shipment: of this organization, not final, on no open route, once in the plan;
    and each stop has a location (its own or its first geocoded shipment's)."""
    on_open = shipments_on_open_routes(
        s.pk for r in routes for stop in r["stops"] for s in stop.get("shipments", [])
    )
    used: dict[int, str] = {}
    for index, route in enumerate(routes):
        for position, stop in enumerate(route["stops"]):
            where = f"stops.{position}"
            shipments = stop.get("shipments", [])
            for shipment in shipments:
                ref = shipment.reference
                if shipment.organization_id != organization_id:
                    errors.add(index, where, f"Unknown shipment reference {ref!r}.")
                    continue
                if shipment.status in FINAL_STATUSES:
                    errors.add(index, where, f"Shipment {ref} is {shipment.status}.")
                if shipment.pk in on_open:
                    errors.add(
                        index,
                        where,
                        f"Shipment {ref} is already on an open route ({on_open[shipment.pk]}).",
                    )
                if shipment.pk in used:
                    errors.add(index, where, f"Shipment {ref} is also on {used[shipment.pk]}.")
                used[shipment.pk] = f"route {route['code']} stop {position + 1}"
            if stop.get("location") is None and not any(s.location for s in shipments):
                errors.add(index, where, "Give a location or a geocoded shipment.")


def _stop_defaults(stop_spec: dict, shipments: list[Shipment]) -> None:
    """A stop is where its first geocoded shipment is, at that shipment's address."""
    if stop_spec.get("location") is None:
        stop_spec["location"] = next(s.location for s in shipments if s.location)
    if not stop_spec.get("address") and shipments:
        stop_spec["address"] = f"{shipments[0].address_line1}, {shipments[0].city}"


@transaction.atomic
def route_plan_create(*, actor: Actor, date: Date, routes: list[dict]) -> list[Route]:
    """Store a day's plan (routes with their stops and shipments) in one transaction, or raise
    `InvalidInput` naming every problem by route index (see `route_plan_problems`: codes new,
    crews of the route's carrier, each shipment not final, on no open route and once in the
    plan). Stops without a location or address take their first shipment's. Shipments without a
    carrier or hub get the route's.
    """
    organization = actor.organization
    _lock_shipments(routes)
    route_plan_problems(organization_id=organization.pk, date=date, routes=routes).raise_if_any()
    route_rows, stop_rows, links = [], [], []
    for spec in routes:
        stops = spec.pop("stops", [])
        route = Route(organization=organization, date=date, **spec)
        route_rows.append(route)
        for index, stop_spec in enumerate(stops, start=1):
            shipments = stop_spec.pop("shipments", [])
            _stop_defaults(stop_spec, shipments)
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
    for route in route_rows:
        emit(catalog.route_changed(route, reason="planned"))
    return route_rows


@transaction.atomic
def route_create(*, actor: Actor, data: dict) -> Route:
    """Create one route (`POST /routes/`), or raise `InvalidInput` naming the fields: the rules
    of `route_problems`, and its code new on its date."""
    organization = actor.organization
    problems = route_problems(organization.pk, data)
    if Route.objects.filter(date=data["date"], code=data["code"]).exists():
        problems.setdefault("code", []).append("A route with this code already exists.")
    _raise_if_any(problems)
    route = Route.objects.create(organization=organization, **data)
    emit(catalog.route_changed(route, reason="planned"))
    return route


@transaction.atomic
def route_update(*, route: Route, actor: Actor, data: dict) -> Route:
    """Edit a route's plan (`PATCH /routes/{id}/`; its status moves only through the life
    cycle), keeping the rules of `route_create`."""
    locked = _lock_route(route)
    problems = route_problems(locked.organization_id, data, route=locked)
    date, code = data.get("date", locked.date), data.get("code", locked.code)
    if Route.objects.filter(date=date, code=code).exclude(pk=locked.pk).exists():
        problems.setdefault("code", []).append("A route with this code already exists.")
    _raise_if_any(problems)
    for name, value in data.items():
        setattr(locked, name, value)
    locked.save()
    emit(catalog.route_changed(locked, reason="edited"))
    return locked


def _raise_if_any(problems: dict[str, list[str]]) -> None:
    if problems:
        raise InvalidInput(next(iter(problems.values()))[0], fields=problems)


def _lock_shipments(routes: list[dict]) -> None:
    """Lock the plan's shipments (in id order, as every writer of shipments does) before the
    open-route check, so a concurrent write putting one of them on another stop either commits
    first, and is seen, or waits for this plan."""
    ids = sorted({s.pk for r in routes for stop in r["stops"] for s in stop.get("shipments", [])})
    if ids:
        list(
            Shipment.objects.select_for_update(of=("self",))
            .filter(pk__in=ids)
            .order_by("pk")
            .only("pk")
        )


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


def _announce(route: Route, *, from_status: str) -> None:
    emit(catalog.route_changed(route, reason="status", from_status=from_status))


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
    _announce(route, from_status=RouteStatus.PLANNED)
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
    _announce(route, from_status=RouteStatus.IN_PROGRESS)
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
    from_status = route.status
    route.status = RouteStatus.CANCELLED
    route.completed_at = at
    route.save(update_fields=["status", "completed_at"])
    _announce(route, from_status=from_status)
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
