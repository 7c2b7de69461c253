"""The shipment status machine and shipment writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from control_tower.errors import Conflict, DomainError, IllegalTransition
from control_tower.realtime import publish_on_commit
from control_tower.tenancy.actors import Actor
from tracking.models import OPEN_STOP_STATUSES, Shipment, ShipmentEvent
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
        raise DomainError(
            f"Unknown status {to_status!r}.",
            fields={"status": [f"Choose one of: {', '.join(S.values)}."]},
            code="validation_error",
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
        publish_on_commit(
            organization_id=locked.organization_id,
            carrier_id=locked.carrier_id,
            event="shipment.status",
            data={
                "id": locked.pk,
                "reference": locked.reference,
                "status": to_status,
                "from": event.from_status,
                "at": at.isoformat(),
            },
        )
    return TransitionResult(shipment=locked, changed=True, event=event)


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


@transaction.atomic
def shipments_bulk_create(*, actor: Actor, items: list[dict]) -> list[Shipment]:
    """Create many shipments in one transaction: all of them or none.

    `items` are validated field dicts (the serializer checked types, uniqueness against the
    database and duplicates inside the batch). One `ShipmentEvent` (info received) each.
    """
    organization = actor.organization
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
    return created


def shipment_record_creation(*, shipment: Shipment, actor: Actor | None) -> None:
    """The first status event of a shipment created one at a time."""
    ShipmentEvent.objects.create(
        organization=shipment.organization,
        shipment=shipment,
        from_status="",
        to_status=shipment.status,
        occurred_at=shipment.status_changed_at,
        source="api",
        **_actor_fields(actor),
    )


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
