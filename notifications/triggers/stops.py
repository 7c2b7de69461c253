"""Route events → "the driver is N stops / N minutes away" and "the window moved".

N stops away counts the open stops before yours once the driver has visited (or arrived at)
a stop of the route; N minutes away reads your stop's ETA.

`stop.status_changed` (a stop before yours was visited) and `stop.eta_changed` (your ETA
moved) are ordered per route by the relay. Driver nearby: once per shipment and day.
Window moved: when the customer-visible window (rounded as on the tracking page) reaches more
than `eta_moved_min` outside the last window a message told (earlier or later; a narrower
window inside it is not news), at most every `renotify_every_min`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from notifications.models import Notification, Status, Trigger
from notifications.policy import trigger_config
from notifications.services.messages import Intent, notify_customer, shipment_language
from notifications.triggers.common import (
    driver_first_name,
    local_date,
    window_variables,
)
from tracking.models import OPEN_STOP_STATUSES, RouteStatus, Shipment, Stop

# Messages whose window counts as "what the customer was told".
WINDOW_TRIGGERS = (Trigger.OUT_FOR_DELIVERY, Trigger.ETA_WINDOW_MOVED, Trigger.DRIVER_NEARBY)
TOLD_STATUSES = (Status.QUEUED, Status.HELD, Status.SENDING, Status.SENT, Status.DELIVERED)


def _open_stops(route_id) -> list[Stop]:
    return list(
        Stop.objects.filter(route_id=route_id, status__in=OPEN_STOP_STATUSES)
        .select_related("route", "route__driver", "organization")
        .order_by("sequence")
    )


def _shipments_at(stop: Stop) -> list[Shipment]:
    return list(
        Shipment.objects.filter(stop_shipments__stop_id=stop.pk).select_related("organization")
    )


def _minutes_until(stop: Stop, now: datetime) -> float | None:
    if stop.eta is None:
        return None
    return max((stop.eta - now).total_seconds() / 60, 0.0)


def on_stop_changed(event) -> None:
    """A stop's status changed (a stop before yours may be done: every open stop of the route
    is checked for "driver nearby"), or one stop's ETA moved (that stop only: a recompute
    emits one event per stop, so each is looked at once)."""
    stops = _open_stops(event.payload["route"])
    if not stops or stops[0].route.status != RouteStatus.IN_PROGRESS:
        return
    now = timezone.now()
    moved = event.payload["id"] if event.type == "stop.eta_changed" else None
    config = trigger_config(stops[0].organization_id, Trigger.DRIVER_NEARBY)
    if config.enabled:
        # Counting stops means something once the driver is out visiting them: before the
        # first visit every early stop would be "0 stops away" while the van is at the hub.
        visiting = Stop.objects.filter(route_id=stops[0].route_id).exclude(
            status__in=OPEN_STOP_STATUSES
        ).exists() or any(s.status == "arrived" for s in stops)
        for stops_away, stop in enumerate(stops):
            if moved is not None and stop.pk != moved:
                continue
            minutes = _minutes_until(stop, now)
            near_by_stops = visiting and stops_away <= config.param("stops_away")
            near_by_time = minutes is not None and minutes <= config.param("minutes_away")
            if near_by_stops or near_by_time:
                _driver_nearby(event, stop, stops_away=stops_away, minutes=minutes)
    if moved is not None:
        stop = next((s for s in stops if s.pk == moved), None)
        if stop is not None:
            for shipment in _shipments_at(stop):
                _window_moved(event, stop, shipment, now=now)


def _driver_nearby(event, stop: Stop, *, stops_away: int, minutes: float | None) -> None:
    for shipment in _shipments_at(stop):
        language = shipment_language(shipment)
        variables = {
            **window_variables(shipment, language=language, stop=stop),
            "driver_first_name": driver_first_name(stop),
            "stops_away": stops_away,
            "minutes_away": round(minutes) if minutes is not None else None,
        }
        intent = Intent(
            trigger=Trigger.DRIVER_NEARBY,
            occasion=local_date(shipment.organization, event.occurred_at),
            occurred_at=event.occurred_at,
            event_id=event.id,
            variables=variables,
        )
        notify_customer(shipment=shipment, intent=intent)


def _last_told(shipment: Shipment) -> Notification | None:
    return (
        Notification.objects.filter(
            shipment_id=shipment.pk, trigger__in=WINDOW_TRIGGERS, status__in=TOLD_STATUSES
        )
        .exclude(context__window_start=None)
        .order_by("-created_at", "-id")
        .first()
    )


def _window_moved(event, stop: Stop, shipment: Shipment, *, now: datetime) -> None:
    config = trigger_config(shipment.organization_id, Trigger.ETA_WINDOW_MOVED)
    if not config.enabled:
        return
    told = _last_told(shipment)
    if told is None:
        return  # nobody was told a window yet: nothing moved for them
    language = shipment_language(shipment)
    variables = window_variables(shipment, language=language, stop=stop)
    if not variables:
        return
    if not (told.context.get("window_start") and told.context.get("window_end")):
        return
    # How far the new window reaches outside the one they were told: a narrower window inside
    # it (the live ETA after the promised window) changes nothing for someone who planned to
    # be home; arriving earlier or later than they were told does.
    told_start = datetime.fromisoformat(told.context["window_start"])
    told_end = datetime.fromisoformat(told.context["window_end"])
    new_start = datetime.fromisoformat(variables["window_start"])
    new_end = datetime.fromisoformat(variables["window_end"])
    moved = max(told_start - new_start, new_end - told_end, timedelta(0))
    if moved <= timedelta(minutes=config.param("eta_moved_min")):
        return
    last_moved = (
        Notification.objects.filter(
            shipment_id=shipment.pk, trigger=Trigger.ETA_WINDOW_MOVED, status__in=TOLD_STATUSES
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if last_moved and now - last_moved < timedelta(minutes=config.param("renotify_every_min")):
        return
    start, end = new_start, new_end
    intent = Intent(
        trigger=Trigger.ETA_WINDOW_MOVED,
        # Two ETA events that land on the same window make one message.
        occasion=f"{start:%Y%m%d%H%M}-{end:%H%M}",
        occurred_at=event.occurred_at,
        event_id=event.id,
        variables={**variables, "driver_first_name": driver_first_name(stop)},
    )
    notify_customer(shipment=shipment, intent=intent)
