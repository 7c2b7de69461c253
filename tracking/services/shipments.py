"""The shipment status machine and shipment writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from control_tower.errors import Conflict, IllegalTransition
from control_tower.events import catalog, emit, emit_many
from control_tower.tenancy.actors import Actor
from tracking.errors import InvalidInput, ItemErrors
from tracking.models import OPEN_STOP_STATUSES, Shipment, ShipmentEvent, TrackingLink
from tracking.models import ShipmentStatus as S
from tracking.services.custody import Custodian, CustodyKind, custody_append

# Which normalized status may follow which. Delivered, returned and cancelled are final: a late
# "out for delivery" scan can never reopen a delivered shipment.
SHIPMENT_TRANSITIONS: dict[str, frozenset[str]] = {
    S.INFO_RECEIVED: frozenset({S.AT_HUB, S.OUT_FOR_DELIVERY, S.EXCEPTION, S.CANCELLED}),
    S.AT_HUB: frozenset({S.OUT_FOR_DELIVERY, S.EXCEPTION, S.RETURNED, S.CANCELLED}),
    S.OUT_FOR_DELIVERY: frozenset({S.DELIVERED, S.ATTEMPT_FAILED, S.EXCEPTION, S.AT_HUB}),
    S.ATTEMPT_FAILED: frozenset({S.OUT_FOR_DELIVERY, S.AT_HUB, S.EXCEPTION, S.RETURNED}),
    S.EXCEPTION: frozenset(
        {S.AT_HUB, S.OUT_FOR_DELIVERY, S.ATTEMPT_FAILED, S.DELIVERED, S.RETURNED, S.CANCELLED}
    ),
    S.DELIVERED: frozenset(),
    S.RETURNED: frozenset(),
    S.CANCELLED: frozenset(),
}
FINAL_STATUSES = frozenset({S.DELIVERED, S.RETURNED, S.CANCELLED})
# A new shipment is announced by the shipper or already sorted at a hub; anything later happens
# through the status machine, so that its history is complete.
INITIAL_STATUSES = (S.INFO_RECEIVED, S.AT_HUB)
UNIQUE_PER_ORGANIZATION = ("reference", "barcode")


@dataclass(frozen=True)
class TransitionResult:
    shipment: Shipment
    changed: bool
    event: ShipmentEvent | None


def _actor_fields(actor: Actor | None) -> dict:
    if actor is None:
        return {"actor": None, "actor_label": "system"}
    user = actor.user if actor.api_key is None else None
    return {"actor": user, "actor_label": actor.label[:200]}


def shipment_transition(
    *,
    shipment: Shipment,
    to_status: str,
    actor: Actor | None,
    at: datetime | None = None,
    source: str = "api",
    note: str = "",
    custody: dict | None = None,
) -> TransitionResult:
    """Move a shipment to `to_status`, or raise `IllegalTransition` (nothing changes).

    Locks the shipment row, so concurrent scans of one parcel serialize. Asking for the status it
    already has is a no-op success (devices retry). Writes one `ShipmentEvent` and one chain of
    custody entry; `custody` may give that entry's kind, custodian, location, evidence and extra
    details (a scan or a proof of delivery does).
    """
    if to_status not in S.values:
        raise InvalidInput(
            f"Unknown status {to_status!r}.",
            fields={"status": [f"Choose one of: {', '.join(S.values)}."]},
        )
    at = at or timezone.now()
    with transaction.atomic():
        locked = Shipment.objects.select_for_update(of=("self",)).get(pk=shipment.pk)
        if locked.status == to_status:
            return TransitionResult(shipment=locked, changed=False, event=None)
        if to_status not in SHIPMENT_TRANSITIONS[locked.status]:
            allowed = sorted(SHIPMENT_TRANSITIONS[locked.status]) or ["none: it is final"]
            raise IllegalTransition(
                f"A shipment that is {locked.get_status_display().lower()} cannot become "
                f"{S(to_status).label.lower()}.",
                fields={"status": [f"Allowed from {locked.status}: {', '.join(allowed)}."]},
            )
        event = ShipmentEvent.objects.create(
            organization_id=locked.organization_id,
            shipment=locked,
            from_status=locked.status,
            to_status=to_status,
            occurred_at=at,
            source=source,
            note=note[:500],
            **_actor_fields(actor),
        )
        locked.status = to_status
        locked.status_changed_at = at
        locked.save(update_fields=["status", "status_changed_at", "updated_at"])
        extra = dict(custody or {})
        custody_append(
            shipment=locked,
            kind=extra.pop("kind", CustodyKind.STATUS),
            actor=actor.label if actor is not None else "system",
            occurred_at=at,
            custodian=extra.pop("custodian", None) or custodian_after(locked, to_status),
            location=extra.pop("location", None),
            evidence=extra.pop("evidence", None),
            details={
                "from": event.from_status,
                "to": to_status,
                "source": source,
                "note": note[:500],
                **extra.pop("details", {}),
            },
        )
        if to_status in FINAL_STATUSES:
            _links_expire(locked, at)
        emit(catalog.shipment_status_changed(locked, from_status=event.from_status, at=at))
    return TransitionResult(shipment=locked, changed=True, event=event)


def _links_expire(shipment: Shipment, at: datetime) -> None:
    """The shipment reached a final status: its tracking links (tracking/services/
    tracking_links.py) stop working `tracking_link_days` after `at`."""
    TrackingLink.objects.filter(
        shipment_id=shipment.pk, revoked_at__isnull=True, expires_at__isnull=True
    ).update(expires_at=TrackingLink.expiry_after_final(at, shipment.organization))


def custodian_after(shipment: Shipment, to_status: str) -> str | None:
    """Who holds the parcel once it has `to_status`; None when that does not change hands."""
    if to_status == S.AT_HUB:
        return Custodian.hub(shipment.hub.code if shipment.hub_id else None)
    if to_status == S.OUT_FOR_DELIVERY:
        route = (
            shipment.stops.filter(status__in=OPEN_STOP_STATUSES)
            .select_related("route__driver")
            .order_by("-route__date")
            .values_list("route__driver__name", "route__driver_id")
            .first()
        )
        if route and route[1]:
            return Custodian.driver(route[1], route[0])
        return Custodian.carrier(shipment.carrier.code if shipment.carrier_id else None)
    if to_status == S.DELIVERED:
        return Custodian.recipient(shipment.recipient_name)
    if to_status == S.RETURNED:
        return Custodian.SHIPPER
    return None


def shipment_fields(data: dict) -> dict:
    """Model fields from parsed input: the status defaults to info received; a `delivery_pin`
    is stored hashed (empty clears it)."""
    fields = dict(data)
    if "delivery_pin" in fields:
        pin = fields.pop("delivery_pin")
        fields["delivery_pin_hash"] = make_password(pin) if pin else ""
    return fields


def _field_problems(organization_id: int, fields: dict, *, new: bool) -> dict[str, list[str]]:
    """The rules one shipment keeps on its own (uniqueness needs the others: see callers)."""
    problems: dict[str, list[str]] = {}
    if new and fields.get("status", S.INFO_RECEIVED) not in INITIAL_STATUSES:
        problems["status"] = ["A new shipment is info_received or at_hub."]
    if not new and "status" in fields:
        problems["status"] = ["Change the status with POST /shipments/{id}/transition/."]
    for name in ("carrier", "hub"):
        related = fields.get(name)
        # An id the caller could not resolve to an object was reported by the caller.
        if getattr(related, "organization_id", organization_id) != organization_id:
            problems[name] = [f'Invalid pk "{related.pk}" - object does not exist.']
    start, end = fields.get("promised_window_start"), fields.get("promised_window_end")
    if start is not None and end is not None and start >= end:
        problems["promised_window_end"] = ["Must be after the start of the window."]
    return problems


def _taken(name: str, values, *, except_pk: int | None = None) -> set[str]:
    """Which of `values` another shipment of the organization already uses as `name`."""
    values = {v for v in values if v}
    if not values:
        return set()
    shipments = Shipment.objects.filter(**{f"{name}__in": values})
    if except_pk is not None:
        shipments = shipments.exclude(pk=except_pk)
    return set(shipments.values_list(name, flat=True))


def _raise_if_any(problems: dict[str, list[str]]) -> None:
    if problems:
        first = next(iter(problems.values()))[0]
        raise InvalidInput(first, fields=problems)


@transaction.atomic
def shipment_create(*, actor: Actor, data: dict) -> Shipment:
    """Create one shipment with its first status event, or raise `InvalidInput` naming the
    fields (nothing is written).

    `data` are parsed fields (carrier and hub as objects). Rules: an initial status (default
    info received), carrier and hub of the actor's organization, the promised window's start
    before its end, reference and barcode unique in the organization.
    """
    organization = actor.organization
    fields = shipment_fields(data)
    problems = _field_problems(organization.pk, fields, new=True)
    for name in UNIQUE_PER_ORGANIZATION:
        if fields.get(name) in _taken(name, [fields.get(name)]):
            problems.setdefault(name, []).append(f"A shipment with this {name} already exists.")
    _raise_if_any(problems)
    shipment = Shipment.objects.create(
        organization=organization, status_changed_at=timezone.now(), **fields
    )
    shipment_record_creation(shipment=shipment, actor=actor)
    return shipment


@transaction.atomic
def shipment_update(*, shipment: Shipment, actor: Actor, data: dict) -> Shipment:
    """Change a shipment's fields (never its status: that is `shipment_transition`), keeping
    the rules of `shipment_create`; raise `InvalidInput` naming the fields otherwise."""
    fields = shipment_fields(data)
    locked = Shipment.objects.select_for_update(of=("self",)).get(pk=shipment.pk)
    merged = {
        "promised_window_start": locked.promised_window_start,
        "promised_window_end": locked.promised_window_end,
        **fields,
    }
    problems = _field_problems(locked.organization_id, merged, new=False)
    for name in UNIQUE_PER_ORGANIZATION:
        if name in fields and fields[name] in _taken(name, [fields[name]], except_pk=locked.pk):
            problems.setdefault(name, []).append(f"A shipment with this {name} already exists.")
    _raise_if_any(problems)
    for name, value in fields.items():
        setattr(locked, name, value)
    locked.save()
    return locked


def shipments_batch_problems(organization_id: int, items: list[dict | None]) -> ItemErrors:
    """Every rule a batch of new shipments breaks, by item index (nothing is raised). `None`
    stands for an item the caller could not parse (it is skipped, its index kept).
    Besides each shipment's own rules: references and barcodes unique in the batch and in
    the organization."""
    errors = ItemErrors("shipments")
    for index, item in enumerate(items):
        if item is not None:
            for name, messages in _field_problems(organization_id, item, new=True).items():
                for message in messages:
                    errors.add(index, name, message)
    for name in UNIQUE_PER_ORGANIZATION:
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            value = item.get(name) if item is not None else None
            if not value:
                continue
            if value in seen:
                errors.add(index, name, f"Repeats item {seen[value]} of this batch.")
            seen.setdefault(value, index)
        taken = _taken(name, seen)
        for index, item in enumerate(items):
            if item is not None and item.get(name) in taken:
                errors.add(index, name, f"A shipment with this {name} already exists.")
    return errors


@transaction.atomic
def shipments_bulk_create(*, actor: Actor, items: list[dict]) -> list[Shipment]:
    """Create many shipments in one transaction: all of them or none (`InvalidInput` lists
    every problem by item index, see `shipments_batch_problems`).

    `items` are parsed field dicts (carrier and hub as objects). One `ShipmentEvent` and one
    `shipment.created` event each.
    """
    organization = actor.organization
    items = [shipment_fields(item) for item in items]
    shipments_batch_problems(organization.pk, items).raise_if_any()
    now = timezone.now()
    shipments = [
        Shipment(organization=organization, status_changed_at=now, **item) for item in items
    ]
    created = Shipment.objects.bulk_create(shipments, batch_size=1000)
    ShipmentEvent.objects.bulk_create(
        [
            ShipmentEvent(
                organization=organization,
                shipment=shipment,
                from_status="",
                to_status=shipment.status,
                occurred_at=now,
                source="api",
                **_actor_fields(actor),
            )
            for shipment in created
        ],
        batch_size=1000,
    )
    emit_many([catalog.shipment_created(shipment) for shipment in created])
    return created


def shipment_record_creation(*, shipment: Shipment, actor: Actor | None) -> None:
    """The first status event of a shipment created one at a time, and its `shipment.created`
    event (durable: notifications send the tracking link from it)."""
    ShipmentEvent.objects.create(
        organization=shipment.organization,
        shipment=shipment,
        from_status="",
        to_status=shipment.status,
        occurred_at=shipment.status_changed_at,
        source="api",
        **_actor_fields(actor),
    )
    emit(catalog.shipment_created(shipment))


@transaction.atomic
def shipment_delete(*, shipment: Shipment) -> None:
    """Delete a shipment that nothing has happened to yet; anything else must be cancelled,
    so that its history stays."""
    locked = Shipment.objects.select_for_update(of=("self",)).get(pk=shipment.pk)
    if (
        locked.status != S.INFO_RECEIVED
        or locked.stop_shipments.exists()
        or locked.custody.exists()
    ):
        raise Conflict(
            "Only a shipment that is still 'info received', on no route and with no chain of "
            "custody yet can be deleted; cancel it instead.",
            code="not_deletable",
        )
    locked.delete()
