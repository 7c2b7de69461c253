"""Shipment events → customer messages: created, out for delivery, delivered (and the feedback
request after it), attempt failed, rescheduled."""

from __future__ import annotations

from datetime import timedelta

from notifications.models import Trigger
from notifications.policy import trigger_config
from notifications.services.messages import Intent, notify_customer, shipment_language
from notifications.triggers.common import (
    driver_first_name,
    event_time,
    local_date,
    open_stop_of,
    shipment_of,
    window_variables,
)
from tracking.models import Stop, StopStatus

# Failure reasons as the recipient reads them.
FAILURE_REASONS = {
    "es": {
        "not_home": "no había nadie en casa",
        "refused": "el envío fue rechazado",
        "address_not_found": "no encontramos la dirección",
        "access_denied": "no pudimos entrar al edificio",
        "damaged": "el paquete se dañó",
        "out_of_time": "no alcanzamos a llegar",
        "other": "",
    },
    "en": {
        "not_home": "nobody was home",
        "refused": "the parcel was refused",
        "address_not_found": "we could not find the address",
        "access_denied": "we could not get into the building",
        "damaged": "the parcel was damaged",
        "out_of_time": "we ran out of time",
        "other": "",
    },
}


def on_shipment_created(event) -> None:
    shipment = shipment_of(event.payload["id"])
    if shipment is None:
        return
    intent = Intent(
        trigger=Trigger.SHIPMENT_CREATED,
        occasion="",
        occurred_at=event.occurred_at,
        event_id=event.id,
    )
    notify_customer(shipment=shipment, intent=intent)


def on_status_changed(event) -> None:
    status = event.payload.get("status")
    handler = _BY_STATUS.get(status)
    if handler is None:
        return
    shipment = shipment_of(event.payload["id"])
    if shipment is None or shipment.status != status:
        return  # it moved on already: the later event speaks for it
    handler(event, shipment)


def _out_for_delivery(event, shipment) -> None:
    at = event_time(event)
    stop = open_stop_of(shipment)
    variables = {
        **window_variables(shipment, language=shipment_language(shipment), stop=stop),
        "driver_first_name": driver_first_name(stop),
    }
    intent = Intent(
        trigger=Trigger.OUT_FOR_DELIVERY,
        occasion=local_date(shipment.organization, at),
        occurred_at=at,
        event_id=event.id,
        variables=variables,
    )
    notify_customer(shipment=shipment, intent=intent)


def _delivered(event, shipment) -> None:
    at = event_time(event)
    notify_customer(
        shipment=shipment,
        intent=Intent(trigger=Trigger.DELIVERED, occasion="", occurred_at=at, event_id=event.id),
    )
    delay = trigger_config(shipment.organization_id, Trigger.FEEDBACK_REQUEST).param(
        "feedback_delay_min"
    )
    notify_customer(
        shipment=shipment,
        intent=Intent(
            trigger=Trigger.FEEDBACK_REQUEST,
            occasion="",
            occurred_at=at,
            event_id=event.id,
            send_after=at + timedelta(minutes=delay),
        ),
    )


def _attempt_failed(event, shipment) -> None:
    at = event_time(event)
    language = shipment_language(shipment)
    stop = (
        Stop.objects.filter(stop_shipments__shipment_id=shipment.pk, status=StopStatus.FAILED)
        .order_by("-actual_departure", "-id")
        .first()
    )
    reason = FAILURE_REASONS[language].get(stop.failure_reason, "") if stop else ""
    intent = Intent(
        trigger=Trigger.ATTEMPT_FAILED,
        # One message per failed stop (a shipment may fail on two days).
        occasion=f"stop{stop.pk}" if stop is not None else local_date(shipment.organization, at),
        occurred_at=at,
        event_id=event.id,
        variables={"reason": reason},
    )
    notify_customer(shipment=shipment, intent=intent)


_BY_STATUS = {
    "out_for_delivery": _out_for_delivery,
    "delivered": _delivered,
    "attempt_failed": _attempt_failed,
}


def on_rescheduled(event) -> None:
    shipment = shipment_of(event.payload["id"])
    if shipment is None:
        return
    language = shipment_language(shipment)
    variables = window_variables(shipment, language=language, stop=None)
    intent = Intent(
        trigger=Trigger.RESCHEDULED,
        occasion=str(event.payload.get("window_start") or event.id),
        occurred_at=event_time(event),
        event_id=event.id,
        variables=variables,
    )
    notify_customer(shipment=shipment, intent=intent)
