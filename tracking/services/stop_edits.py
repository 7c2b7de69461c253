"""Adding a stop to a route and editing a stop's plan (`POST /stops/`, `PATCH /stops/{id}/`).

The life cycle (arrive, complete, fail, skip) is tracking/services/stops.py's; moving a stop to
another route is a reassignment (tracking/services/reassign.py); which shipments a stop hands
over is tracking/services/stop_shipments.py's, called from here.
"""

from __future__ import annotations

from django.db import transaction

from control_tower.tenancy.actors import Actor
from tracking.errors import InvalidInput
from tracking.models import Route, Shipment, Stop
from tracking.services.stop_shipments import OPEN_ROUTE_STATUSES, stop_shipments_set


def _problems(route: Route, fields: dict, *, stop: Stop | None) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    if route.status not in OPEN_ROUTE_STATUSES:
        problems["route"] = [f"The route is {route.status}."]
    start = fields.get("window_start", getattr(stop, "window_start", None))
    end = fields.get("window_end", getattr(stop, "window_end", None))
    if start is not None and end is not None and start >= end:
        problems["window_end"] = ["Must be after the start of the window."]
    sequence = fields.get("sequence")
    if sequence is not None:
        taken = Stop.objects.filter(route=route, sequence=sequence)
        if stop is not None:
            taken = taken.exclude(pk=stop.pk)
        if taken.exists():
            problems["sequence"] = ["A stop with this sequence already exists."]
    return problems


def _raise_if_any(problems: dict[str, list[str]]) -> None:
    if problems:
        raise InvalidInput(next(iter(problems.values()))[0], fields=problems)


@transaction.atomic
def stop_create(*, actor: Actor, data: dict, shipments: list[Shipment] | None = None) -> Stop:
    """Add a stop to an open route (its sequence free on that route, its window in order),
    with the shipments it hands over (see `stop_shipments_set`)."""
    route = Route.objects.select_for_update(of=("self",)).get(pk=data["route"].pk)
    _raise_if_any(_problems(route, data, stop=None))
    stop = Stop.objects.create(organization=actor.organization, **{**data, "route": route})
    return stop_shipments_set(stop=stop, shipments=shipments or [], actor=actor)


@transaction.atomic
def stop_update(
    *, stop: Stop, actor: Actor, data: dict, shipments: list[Shipment] | None = None
) -> Stop:
    """Edit a stop's plan on its open route; `shipments`, when given, become the ones it hands
    over. Moving it to another route is refused: that is a reassignment."""
    fields = dict(data)
    if "route" in fields and fields.pop("route").pk != stop.route_id:
        raise InvalidInput.on(
            "route", "Moving a stop to another route is a reassignment, not an edit."
        )
    route = Route.objects.select_for_update(of=("self",)).get(pk=stop.route_id)
    locked = Stop.objects.select_for_update(of=("self",)).get(pk=stop.pk)
    _raise_if_any(_problems(route, fields, stop=locked))
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    if shipments is not None:
        locked = stop_shipments_set(stop=locked, shipments=shipments, actor=actor)
    return locked
