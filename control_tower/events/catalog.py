"""The event catalog: every domain event named once, with its version and payload builder.

An event says what happened, never who should hear it. Services build one with a function of
this module and hand it to `emit` (control_tower/events/emit.py); consumers subscribe by type.
This module is domain-neutral: builders read plain attributes of whatever they are given
(`shipment.pk`, `route.carrier_id` ...) and import nothing from the domain or presentation
apps, so any app may use it without an import circle.

Payloads are JSON-safe: ids, strings, finite numbers, ISO 8601 times in UTC with an offset.
A non-finite float (NaN, Infinity) becomes null: one bad device reading must not produce a
payload that a JSON parser refuses.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from control_tower.events.json_safety import finite, iso, json_safe, point

ALERT_NAMESPACE = "alert."
NOTIFICATION_NAMESPACE = "notification."
RESERVED_NAMESPACES = (ALERT_NAMESPACE, NOTIFICATION_NAMESPACE)


@dataclass(frozen=True)
class EventType:
    """One kind of event. `durable` events get an outbox row in the emitting transaction;
    the others are live only. `merge_in_transaction`: several emits for one aggregate in one
    transaction become one event carrying the last payload (`reasons` are united)."""

    name: str
    version: int
    aggregate: str
    durable: bool
    description: str
    merge_in_transaction: bool = False


@dataclass
class Event:
    """One occurrence. `id` is what idempotent consumers remember; `aggregate_type` and
    `aggregate_id` are what the relay keeps in order."""

    type: str
    version: int
    organization_id: int
    carrier_id: int | None
    aggregate_type: str
    aggregate_id: str
    payload: dict
    occurred_at: datetime = field(default_factory=timezone.now)
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    # Recorded after the fact (a history import): true for what happened, but not a condition
    # anyone can act on now. Subscribers that alert or notify pass these over
    # (`subscribe(..., backfill=False)`); reports and projections still count them.
    backfill: bool = False

    @property
    def event_type(self) -> EventType:
        return EVENT_TYPES[self.type]

    @property
    def aggregate_key(self) -> tuple[int, str, str]:
        return (self.organization_id, self.aggregate_type, self.aggregate_id)

    def as_dict(self) -> dict:
        """The envelope as JSON-safe data (what webhooks and logs see)."""
        return {
            "id": str(self.id),
            "type": self.type,
            "version": self.version,
            "organization_id": self.organization_id,
            "carrier_id": self.carrier_id,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "occurred_at": iso(self.occurred_at),
            "payload": self.payload,
            "backfill": self.backfill,
        }


EVENT_TYPES: dict[str, EventType] = {}


def register_event_type(event_type: EventType, *, replace: bool = False) -> EventType:
    """Add a type to the catalog (later modules add `alert.*` and `notification.*` types from
    their AppConfig.ready()). A name is registered once: two meanings for one name is the
    kind of drift the catalog exists to prevent."""
    if event_type.name in EVENT_TYPES and not replace:
        raise ValueError(f"Event type {event_type.name!r} is already in the catalog.")
    EVENT_TYPES[event_type.name] = event_type
    return event_type


def make_event(
    type_name: str,
    *,
    organization_id: int,
    carrier_id: int | None,
    aggregate_id,
    payload: dict,
    occurred_at: datetime | None = None,
) -> Event:
    """An event of a registered type (for types added by later modules, which have no builder
    here). The payload is made JSON-safe."""
    event_type = EVENT_TYPES[type_name]
    return Event(
        type=event_type.name,
        version=event_type.version,
        organization_id=organization_id,
        carrier_id=carrier_id,
        aggregate_type=event_type.aggregate,
        aggregate_id=str(aggregate_id),
        payload=json_safe(payload),
        occurred_at=occurred_at or timezone.now(),
    )


# ---------------------------------------------------------------------------------------------
# The catalog
# ---------------------------------------------------------------------------------------------

SHIPMENT_CREATED = register_event_type(
    EventType(
        "shipment.created",
        1,
        "shipment",
        durable=True,
        description="A shipment was created (one at a time or in a batch).",
    )
)
SHIPMENT_STATUS_CHANGED = register_event_type(
    EventType(
        "shipment.status_changed",
        1,
        "shipment",
        durable=True,
        description="A shipment moved through the status machine.",
    )
)
STOP_STATUS_CHANGED = register_event_type(
    EventType(
        "stop.status_changed",
        1,
        "route",
        durable=True,
        description=(
            "A stop's status changed, or a reassignment moved it (new route or sequence)."
        ),
    )
)
STOP_ETA_CHANGED = register_event_type(
    EventType(
        "stop.eta_changed",
        1,
        "route",
        durable=True,
        description="A stop's ETA moved by more than ETA_MATERIAL_CHANGE_S.",
    )
)
ROUTE_CHANGED = register_event_type(
    EventType(
        "route.changed",
        1,
        "route",
        durable=True,
        description=(
            "A route's list line may have changed: its status, one of its stops' status, or "
            "a reassignment. One per route per transaction."
        ),
        merge_in_transaction=True,
    )
)
VEHICLE_MOVED = register_event_type(
    EventType(
        "vehicle.moved",
        1,
        "vehicle",
        durable=False,  # one per ping: live only; durable readers use the last-position table
        description="A vehicle's last position moved forward.",
    )
)
SCAN_RECORDED = register_event_type(
    EventType(
        "scan.recorded",
        1,
        "shipment",
        durable=True,
        description="A barcode scan was stored (applied, unchanged, refused or unknown).",
    )
)
POD_CAPTURED = register_event_type(
    EventType(
        "pod.captured",
        1,
        "shipment",
        durable=True,
        description="A proof of delivery was stored (the shipment is delivered).",
    )
)
CUSTODY_APPENDED = register_event_type(
    EventType(
        "custody.appended",
        1,
        "shipment",
        durable=True,
        description="An entry was appended to a shipment's chain of custody.",
    )
)

# What recipients do through their tracking link (tracking/services/customer_actions.py).
SHIPMENT_CUSTOMER_UPDATED = register_event_type(
    EventType(
        "shipment.customer_updated",
        1,
        "shipment",
        durable=True,
        description="The recipient changed what the driver should know (delivery instructions).",
    )
)
SHIPMENT_RESCHEDULED = register_event_type(
    EventType(
        "shipment.rescheduled",
        1,
        "shipment",
        durable=True,
        description=(
            "The recipient moved the delivery to another day or window; it was taken off its "
            "route (that route's route.changed follows)."
        ),
    )
)
STOP_RECIPIENT_AWAY = register_event_type(
    EventType(
        "stop.recipient_away",
        1,
        "route",
        durable=True,
        description="The recipient said, before the driver arrived, that nobody is home.",
    )
)
SHIPMENT_RATED = register_event_type(
    EventType(
        "shipment.rated",
        1,
        "shipment",
        durable=True,
        description="The recipient rated a delivered shipment (1-5 stars), once.",
    )
)


def _event(event_type: EventType, *, organization_id, carrier_id, aggregate_id, payload, at=None):
    return Event(
        type=event_type.name,
        version=event_type.version,
        organization_id=organization_id,
        carrier_id=carrier_id,
        aggregate_type=event_type.aggregate,
        aggregate_id=str(aggregate_id),
        payload=json_safe(payload),
        occurred_at=at or timezone.now(),
    )


def shipment_created(shipment) -> Event:
    return _event(
        SHIPMENT_CREATED,
        organization_id=shipment.organization_id,
        carrier_id=shipment.carrier_id,
        aggregate_id=shipment.pk,
        at=shipment.created_at,
        payload={
            "id": shipment.pk,
            "reference": shipment.reference,
            "status": shipment.status,
            "carrier": shipment.carrier_id,
        },
    )


def shipment_status_changed(shipment, *, from_status: str, at: datetime) -> Event:
    return _event(
        SHIPMENT_STATUS_CHANGED,
        organization_id=shipment.organization_id,
        carrier_id=shipment.carrier_id,
        aggregate_id=shipment.pk,
        at=at,
        payload={
            "id": shipment.pk,
            "reference": shipment.reference,
            "status": shipment.status,
            "from": from_status,
            "at": at,
        },
    )


def stop_status_changed(stop, *, carrier_id: int | None) -> Event:
    return _event(
        STOP_STATUS_CHANGED,
        organization_id=stop.organization_id,
        carrier_id=carrier_id,
        aggregate_id=stop.route_id,
        payload={
            "id": stop.pk,
            "route": stop.route_id,
            "sequence": stop.sequence,
            "status": stop.status,
            "actual_arrival": stop.actual_arrival,
            "actual_departure": stop.actual_departure,
        },
    )


def stop_eta_changed(
    route, *, stop_id: int, sequence: int, eta: datetime, earliest: datetime, latest: datetime
) -> Event:
    return _event(
        STOP_ETA_CHANGED,
        organization_id=route.organization_id,
        carrier_id=route.carrier_id,
        aggregate_id=route.pk,
        payload={
            "id": stop_id,
            "route": route.pk,
            "sequence": sequence,
            "eta": eta,
            "earliest": earliest,
            "latest": latest,
        },
    )


ROUTE_REASONS = (
    "planned",
    "edited",
    "status",
    "stops",
    "reassigned",
    "shipments",
    "recipient",
)


def route_changed(route, *, reason: str, from_status: str | None = None) -> Event:
    """`reason`: "planned" (the route was created), "edited" (its plan: crew, window, code),
    "status" (the route's own status; `from_status` is the old one), "stops" (a stop's
    status), "reassigned" (stops moved in or out), "shipments" (shipments linked),
    "recipient" (a recipient said they are not home)."""
    if reason not in ROUTE_REASONS:
        raise ValueError(f"Unknown route.changed reason {reason!r}")
    return _event(
        ROUTE_CHANGED,
        organization_id=route.organization_id,
        carrier_id=route.carrier_id,
        aggregate_id=route.pk,
        payload={
            "id": route.pk,
            "code": route.code,
            "date": route.date,
            "status": route.status,
            "from": from_status,
            "carrier": route.carrier_id,
            "hub": route.hub_id,
            "vehicle": route.vehicle_id,
            "driver": route.driver_id,
            "reasons": [reason],
        },
    )


def merge_payloads(earlier: dict, later: dict) -> dict:
    """What one merged event of a transaction carries: the latest payload, every reason, the
    status set by the transaction's last status change (a caller emitting for another reason
    may hold an older copy of the row) and the status before its first one."""
    merged = dict(later)
    earlier_reasons = earlier.get("reasons", [])
    later_reasons = later.get("reasons", [])
    merged["reasons"] = earlier_reasons + [r for r in later_reasons if r not in earlier_reasons]
    if "status" in earlier_reasons:
        if "status" not in later_reasons:
            merged["status"] = earlier["status"]
        merged["from"] = earlier["from"]
    return merged


def vehicle_moved(
    *,
    organization_id: int,
    carrier_id: int | None,
    vehicle_id: int,
    route_id: int | None,
    device_id: int,
    lat: float,
    lon: float,
    fix_time,
    speed_mps: float | None,
    heading_deg: float | None,
    battery_pct: int | None,
) -> Event:
    """Built on the ingest hot path: plain fields, no model object, no query."""
    return Event(
        type=VEHICLE_MOVED.name,
        version=VEHICLE_MOVED.version,
        organization_id=organization_id,
        carrier_id=carrier_id,
        aggregate_type=VEHICLE_MOVED.aggregate,
        aggregate_id=str(vehicle_id),
        payload={
            "id": vehicle_id,
            "route": route_id,
            "device": device_id,
            "lat": finite(lat),
            "lon": finite(lon),
            "fix_time": fix_time if isinstance(fix_time, str) else iso(fix_time),
            "speed_mps": finite(speed_mps),
            "heading_deg": finite(heading_deg),
            "battery_pct": battery_pct if isinstance(battery_pct, int) else None,
        },
    )


def scan_recorded(scan, *, shipment, carrier_id: int | None) -> Event:
    """Every stored scan; one of an unknown barcode has no shipment (its aggregate is the
    barcode, so consumers still see scans of one unknown label in order)."""
    return _event(
        SCAN_RECORDED,
        organization_id=scan.organization_id,
        carrier_id=carrier_id,
        aggregate_id=shipment.pk if shipment is not None else f"barcode:{scan.barcode}",
        at=scan.occurred_at,
        payload={
            "id": scan.pk,
            "shipment": shipment.pk if shipment is not None else None,
            "reference": shipment.reference if shipment is not None else None,
            "barcode": scan.barcode,
            "scan_type": scan.scan_type,
            "result": scan.result,
            "detail": scan.detail,
            "occurred_at": scan.occurred_at,
            "device": scan.device_id,
            "hub": scan.hub_id,
            "location": point(scan.location),
            "reason_code": scan.reason_code or None,
        },
    )


def pod_captured(pod, *, shipment) -> Event:
    return _event(
        POD_CAPTURED,
        organization_id=pod.organization_id,
        carrier_id=shipment.carrier_id,
        aggregate_id=shipment.pk,
        at=pod.captured_at,
        payload={
            "id": pod.pk,
            "shipment": shipment.pk,
            "reference": shipment.reference,
            "stop": pod.stop_id,
            "device": pod.device_id,
            "recipient_name": pod.recipient_name,
            "pin_verified": pod.pin_verified,
            "captured_at": pod.captured_at,
            "location": point(pod.location),
            "distance_m": None if pod.distance_m is None else round(pod.distance_m, 1),
            "outside_geofence": pod.outside_geofence,
            "outcome": pod.outcome,
            "failure_reason": pod.failure_reason,
            "left_at": pod.left_at,
        },
    )


def custody_appended(entry, *, carrier_id: int | None) -> Event:
    return _event(
        CUSTODY_APPENDED,
        organization_id=entry.organization_id,
        carrier_id=carrier_id,
        aggregate_id=entry.shipment_id,
        at=entry.occurred_at,
        payload={
            "id": entry.pk,
            "shipment": entry.shipment_id,
            "sequence": entry.sequence,
            "kind": entry.kind,
            "actor": entry.actor,
            "custodian": entry.custodian,
            "occurred_at": entry.occurred_at,
            "location": point(entry.location),
            "hash": entry.hash,
        },
    )


def shipment_customer_updated(shipment, *, fields: list[str], at: datetime) -> Event:
    """Names the changed fields only: what recipients type (gate codes) stays out of events,
    webhooks and logs; consumers that need it read the shipment."""
    return _event(
        SHIPMENT_CUSTOMER_UPDATED,
        organization_id=shipment.organization_id,
        carrier_id=shipment.carrier_id,
        aggregate_id=shipment.pk,
        at=at,
        payload={"id": shipment.pk, "reference": shipment.reference, "fields": fields, "at": at},
    )


def shipment_rescheduled(
    shipment, *, window_start: datetime, window_end: datetime, route_id, stop_id, at: datetime
) -> Event:
    return _event(
        SHIPMENT_RESCHEDULED,
        organization_id=shipment.organization_id,
        carrier_id=shipment.carrier_id,
        aggregate_id=shipment.pk,
        at=at,
        payload={
            "id": shipment.pk,
            "reference": shipment.reference,
            "window_start": window_start,
            "window_end": window_end,
            "taken_off_route": route_id,
            "taken_off_stop": stop_id,
            "at": at,
        },
    )


def stop_recipient_away(stop, *, shipment, carrier_id: int | None, at: datetime) -> Event:
    return _event(
        STOP_RECIPIENT_AWAY,
        organization_id=stop.organization_id,
        carrier_id=carrier_id,
        aggregate_id=stop.route_id,
        at=at,
        payload={
            "id": stop.pk,
            "route": stop.route_id,
            "sequence": stop.sequence,
            "shipment": shipment.pk,
            "reference": shipment.reference,
            "at": at,
        },
    )


def shipment_rated(rating, *, shipment) -> Event:
    """Stars and who delivered, for the SLA roll-ups; the comment stays in the table."""
    return _event(
        SHIPMENT_RATED,
        organization_id=rating.organization_id,
        carrier_id=rating.carrier_id,
        aggregate_id=shipment.pk,
        at=rating.created_at,
        payload={
            "id": rating.pk,
            "shipment": shipment.pk,
            "reference": shipment.reference,
            "stars": rating.stars,
            "has_comment": bool(rating.comment),
            "carrier": rating.carrier_id,
            "driver": rating.driver_id,
            "delivered_at": rating.delivered_at,
        },
    )
