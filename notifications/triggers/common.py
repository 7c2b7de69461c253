"""What the trigger modules share: loading the event's shipment, the customer-visible window
of its open stop, event times."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from notifications.rendering import format_window
from notifications.services.messages import organization_zone
from tracking.eta_window import honest_window
from tracking.models import OPEN_STOP_STATUSES, Shipment, Stop


def shipment_of(shipment_id) -> Shipment | None:
    """The shipment (organization in scope), with its organization loaded."""
    return Shipment.objects.select_related("organization").filter(pk=shipment_id).first()


def event_time(event, key: str = "at") -> datetime:
    value = event.payload.get(key)
    return (parse_datetime(value) if isinstance(value, str) else None) or event.occurred_at


def local_date(organization, at: datetime) -> str:
    return at.astimezone(organization_zone(organization)).date().isoformat()


def open_stop_of(shipment) -> Stop | None:
    return (
        Stop.objects.filter(stop_shipments__shipment_id=shipment.pk, status__in=OPEN_STOP_STATUSES)
        .select_related("route", "route__driver")
        .order_by("-route__date", "sequence")
        .first()
    )


def window_variables(shipment, *, language: str, stop: Stop | None = None) -> dict:
    """{'window', 'window_start', 'window_end'} from the open stop's ETA interval rounded as
    the tracking page rounds it (tracking/eta_window.py), else the promised window; {} when
    neither is known. `window_start`/`window_end` (ISO) let a later message compare."""
    organization = shipment.organization
    zone = organization_zone(organization)
    stop = stop if stop is not None else open_stop_of(shipment)
    if stop is not None and stop.eta_earliest and stop.eta_latest:
        start, end = honest_window(
            earliest=stop.eta_earliest, latest=stop.eta_latest, now=timezone.now(), zone=zone
        )
    elif shipment.promised_window_start and shipment.promised_window_end:
        start = shipment.promised_window_start.astimezone(zone)
        end = shipment.promised_window_end.astimezone(zone)
    else:
        return {}
    return {
        "window": format_window(start, end, language=language),
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
    }


def driver_first_name(stop: Stop | None) -> str:
    driver = stop.route.driver if stop is not None else None
    names = (driver.name if driver is not None else "").split()
    return names[0] if names else ""
