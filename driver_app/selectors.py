"""What the driver's phone shows: today's routes of the signed-in driver, in one read.

Everything goes through `visible_to`, so a phone sees its own driver's routes and nothing of
other drivers, carriers or organizations (control_tower/tenancy/carrier_scope.py). The answer
is what the app caches for the day (offline), so it carries everything a stop needs: address,
window, ETA, parcels, recipient, the customer's instructions, whether a PIN is needed.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import quote

from django.db.models import Prefetch, Q
from django.utils import timezone

from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.times import iso
from driver_app import labels
from tracking.models import Route, RouteStatus, Shipment, Stop

# Coordinates on the wire: 6 decimals are 0.1 m, more is noise (and bytes on a phone plan).
COORDINATE_DECIMALS = 6
# An unfinished route of an earlier day stays on the phone this long (a night shift).
CARRY_OVER_DAYS = 2


def _coordinate(value: float) -> float:
    return round(value, COORDINATE_DECIMALS)


def navigate_url(lat: float, lon: float, label: str) -> str:
    """A `geo:` URI (RFC 5870, with the `q` extension Android's maps apps read): the phone
    hands it to the maps app of the driver's choice."""
    return f"geo:{lat},{lon}?q={lat},{lon}({quote(label or 'stop')})"


def _shipment(shipment: Shipment) -> dict:
    return {
        "id": shipment.pk,
        "reference": shipment.reference,
        "barcode": shipment.barcode,
        "status": shipment.status,
        "recipient_name": shipment.recipient_name,
        "recipient_phone": shipment.recipient_phone,
        "parcel_count": shipment.parcel_count,
        "delivery_instructions": shipment.delivery_instructions,
        "requires_pin": bool(shipment.delivery_pin_hash),
    }


def _stop(stop: Stop) -> dict:
    lat, lon = _coordinate(stop.location.y), _coordinate(stop.location.x)
    return {
        "id": stop.pk,
        "sequence": stop.sequence,
        "kind": stop.kind,
        "status": stop.status,
        "address": stop.address,
        "lat": lat,
        "lon": lon,
        "window_start": iso(stop.window_start),
        "window_end": iso(stop.window_end),
        "planned_arrival": iso(stop.planned_arrival),
        "eta": iso(stop.eta),
        "eta_earliest": iso(stop.eta_earliest),
        "eta_latest": iso(stop.eta_latest),
        "actual_arrival": iso(stop.actual_arrival),
        "actual_departure": iso(stop.actual_departure),
        "failure_reason": stop.failure_reason,
        "notes": stop.notes,
        "navigate_url": navigate_url(lat, lon, stop.address),
        "shipments": [_shipment(s) for s in stop.shipments.all()],
    }


def _route(route: Route) -> dict:
    hub, vehicle = route.hub, route.vehicle
    geometry = route.planned_geometry
    return {
        "id": route.pk,
        "code": route.code,
        "status": route.status,
        "date": route.date.isoformat(),
        "planned_start": iso(route.planned_start),
        "planned_end": iso(route.planned_end),
        "started_at": iso(route.started_at),
        "completed_at": iso(route.completed_at),
        "hub": {
            "id": hub.pk,
            "code": hub.code,
            "name": hub.name,
            "lat": _coordinate(hub.location.y) if hub.location else None,
            "lon": _coordinate(hub.location.x) if hub.location else None,
        },
        "vehicle": (
            {"id": vehicle.pk, "plate": vehicle.plate, "kind": vehicle.kind} if vehicle else None
        ),
        "path": (
            [[_coordinate(y), _coordinate(x)] for x, y in geometry.coords] if geometry else []
        ),
        "stops": [_stop(stop) for stop in route.stops.all()],
    }


def todays_routes(actor: Actor, *, day: date) -> list[Route]:
    """The actor's routes of `day` that are not cancelled, and any still running from the
    last CARRY_OVER_DAYS days, by planned start."""
    stops = Stop.objects.order_by("sequence", "pk").prefetch_related(
        Prefetch("shipments", queryset=Shipment.objects.order_by("pk"))
    )
    return list(
        visible_to(actor, Route)
        .filter(
            Q(date=day)
            | Q(
                status=RouteStatus.IN_PROGRESS,
                date__gte=day - timedelta(days=CARRY_OVER_DAYS),
                date__lt=day,
            )
        )
        .exclude(status=RouteStatus.CANCELLED)
        .select_related("hub", "vehicle")
        .prefetch_related(Prefetch("stops", queryset=stops))
        .order_by("date", "planned_start", "code")
    )


def driver_today(actor: Actor, *, carrier_pod_policy: dict) -> dict:
    """The phone's whole day (see the module docstring), in the active language."""
    organization = actor.organization
    day = timezone.localtime(timezone.now(), organization.zone).date()
    return {
        "date": day.isoformat(),
        "generated_at": iso(timezone.now()),
        "routes": [_route(route) for route in todays_routes(actor, day=day)],
        "choices": labels.choices(),
        "pod_policy": carrier_pod_policy,
    }
