"""Suggested actions for an alert, shown on the console beside it. Read-only: nothing moves
here; the console runs the chosen action through its own endpoint (a reassignment through
`POST /api/v1/stops/{id}/reassign/`, which re-checks everything).

- reassign the stop (the alert's stop, or its route's next open stop) to the routes that can
  take it with the least added driving time: the same cheapest insertion the reassignment
  itself uses, over the routes the actor may see;
- call the route's driver (a `tel:` link; left out when the driver has no phone);
- notify the customer: not available until notifications exist, so shown disabled.
"""

from __future__ import annotations

from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.roles import WRITE, Resource
from exceptions.models import Alert
from tracking.models import Route, Stop, StopStatus
from tracking.services.reassign import REASSIGNABLE_ROUTE_STATUSES, cheapest_slot, open_tail

# Each candidate costs one travel matrix on the road network: cap how many are priced.
MAX_CANDIDATES = 12
BEST_FEW = 3


def _subject_stop(actor: Actor, alert: Alert) -> Stop | None:
    """The stop the alert is about, or the next open stop of the alert's route."""
    stops = visible_to(actor, Stop).select_related("route__hub", "route__driver")
    if alert.stop_id is not None:
        return stops.filter(pk=alert.stop_id).first()
    if alert.route_id is not None:
        return (
            stops.filter(route_id=alert.route_id, status=StopStatus.PENDING)
            .order_by("sequence", "pk")
            .first()
        )
    return None


def _reassign_options(actor: Actor, stop: Stop) -> list[dict]:
    if not actor.can(Resource.CONSOLE, WRITE):
        return []
    source = stop.route
    if stop.status != StopStatus.PENDING or source.status not in REASSIGNABLE_ROUTE_STATUSES:
        return []
    candidates = list(
        visible_to(actor, Route)
        .filter(date=source.date, status__in=REASSIGNABLE_ROUTE_STATUSES)
        .exclude(pk=source.pk)
        .select_related("hub", "carrier")
        .order_by("code", "pk")[:MAX_CANDIDATES]
    )
    options = []
    for route in candidates:
        route_stops = list(route.stops.order_by("sequence", "pk"))
        first_slot = open_tail(route_stops)
        slot, added_s = cheapest_slot(route, route_stops, first_slot, stop)
        options.append(
            {
                "kind": "reassign_stop",
                "enabled": True,
                "label": f"Reassign the stop to route {route.code} (+{round(added_s / 60)} min)",
                "stop": stop.pk,
                "route": route.pk,
                "route_code": route.code,
                "carrier": route.carrier_id,
                "position": slot - first_slot + 1,
                "added_time_s": round(added_s),
            }
        )
    options.sort(key=lambda o: (o["added_time_s"], o["route_code"]))
    return options[:BEST_FEW]


def _call_driver(route: Route | None) -> dict | None:
    driver = route.driver if route is not None else None
    if driver is None or not driver.phone:
        return None
    return {
        "kind": "call_driver",
        "enabled": True,
        "label": f"Call the driver, {driver.name}",
        "driver": driver.pk,
        "phone": driver.phone,
        "href": f"tel:{''.join(ch for ch in driver.phone if ch.isdigit() or ch == '+')}",
    }


def alert_suggestions(*, actor: Actor, alert: Alert) -> dict:
    """The suggested actions for `alert` (already checked visible to `actor`), best first."""
    stop = _subject_stop(actor, alert)
    route = stop.route if stop is not None else None
    if route is None and alert.route_id is not None:
        route = visible_to(actor, Route).select_related("driver").filter(pk=alert.route_id).first()
    actions = _reassign_options(actor, stop) if stop is not None else []
    call = _call_driver(route)
    if call is not None:
        actions.append(call)
    actions.append(
        {
            "kind": "notify_customer",
            "enabled": False,
            "label": "Notify the customer",
            "reason": "Notifications are not set up yet.",
        }
    )
    return {
        "alert": alert.pk,
        "stop": stop.pk if stop is not None else None,
        "route": route.pk if route is not None else None,
        "actions": actions,
    }
