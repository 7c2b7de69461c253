"""Barcode scans: store every scan as evidence, move the shipment's status when the scan implies
it, and extend the chain of custody.

What a scan type does (docs/SCANS_AND_CUSTODY.md has the table):

- `picked_up` (from the shipper) and `loaded` (onto a vehicle) change hands, not status: the
  shipment keeps its status (`recorded`) and the chain gets one `handoff` entry whose custodian
  is the driver / vehicle / carrier that now holds the parcel. There is no "in transit" status,
  and `info_received → at_hub` on a pick-up would claim a hub arrival that has not happened.
- `arrived_at_hub`, `out_for_delivery`, `delivered`, `attempt_failed`, `returned`, `exception`
  go through `shipment_transition` (the one status machine): `applied` when it moves, `unchanged`
  when the shipment already had that status, `illegal` when the machine refuses (a late "out
  for delivery" after "delivered" never reopens it).
- A scan older than the shipment's current status (phones buffer offline) is `recorded` but does
  not move the status backwards.
- An unknown barcode, or a shipment of another carrier when the caller is bound to a carrier,
  is `unknown_barcode`: stored, no shipment, no custody (the two cases are indistinguishable).

Every scan that found its shipment appends exactly one custody entry: the status entry of kind
`scan` written by `shipment_transition` when the status moved, otherwise one written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from control_tower.errors import IllegalTransition
from control_tower.events import catalog, emit
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import is_visible, visible_to
from tracking.errors import InvalidInput
from tracking.models import (
    OPEN_STOP_STATUSES,
    FailureReason,
    Hub,
    Scan,
    ScanResult,
    ScanType,
    Shipment,
)
from tracking.models import ShipmentStatus as S
from tracking.services.custody import Custodian, CustodyKind, canonical_time, custody_append
from tracking.services.shipments import (
    FINAL_STATUSES,
    SHIPMENT_TRANSITIONS,
    shipment_transition,
)

# The status a scan type asks for; None: a handoff that leaves the status alone.
SCAN_STATUS: dict[str, str | None] = {
    ScanType.PICKED_UP: None,
    ScanType.ARRIVED_AT_HUB: S.AT_HUB,
    ScanType.LOADED: None,
    ScanType.OUT_FOR_DELIVERY: S.OUT_FOR_DELIVERY,
    ScanType.DELIVERED: S.DELIVERED,
    ScanType.ATTEMPT_FAILED: S.ATTEMPT_FAILED,
    ScanType.RETURNED: S.RETURNED,
    ScanType.EXCEPTION: S.EXCEPTION,
}
SCAN_SOURCE = "scan"


@dataclass(frozen=True)
class ScanOutcome:
    index: int
    scan: Scan
    result: str
    duplicate: bool
    shipment: Shipment | None
    detail: str

    def as_dict(self) -> dict:
        shipment = self.shipment
        return {
            "index": self.index,
            "id": self.scan.pk,
            "barcode": self.scan.barcode,
            "result": self.result,
            "duplicate": self.duplicate,
            "shipment": None
            if shipment is None
            else {"id": shipment.pk, "reference": shipment.reference, "status": shipment.status},
            "detail": self.detail,
        }


def scan_item_problems(item: dict) -> dict[str, str]:
    """Business rules of one already type-checked item, as `{field: message}` (empty: fine).
    The API's serializer calls this too, so a batch is refused whole before anything is
    stored."""
    problems: dict[str, str] = {}
    if not item.get("barcode") and not item.get("reference"):
        problems["barcode"] = "Give the scanned barcode (or the shipment reference)."
    elif item.get("barcode") and item.get("reference"):
        problems["reference"] = "Give either barcode or reference, not both."
    if item.get("scan_type") not in ScanType.values:
        problems["scan_type"] = f"Choose one of: {', '.join(ScanType.values)}."
    reason = item.get("reason_code") or ""
    if reason and reason not in FailureReason.values:
        problems["reason_code"] = f"Choose one of: {', '.join(FailureReason.values)}."
    elif item.get("scan_type") == ScanType.ATTEMPT_FAILED and not reason:
        problems["reason_code"] = "A failed attempt needs a reason code."
    occurred_at = item.get("occurred_at")
    if not isinstance(occurred_at, datetime) or timezone.is_naive(occurred_at):
        problems["occurred_at"] = "A time zone aware ISO-8601 time is required."
    hub = item.get("hub")
    if hub is not None and not isinstance(hub, Hub):
        problems["hub"] = "Resolve the hub first."
    return problems


def scan_idempotency_key(*, actor: Actor, item: dict) -> str:
    """The client's event id when it sent one (unique within the organization: use UUIDs);
    otherwise who scanned what, how and when."""
    if item.get("event_id"):
        return item["event_id"]
    if actor.device is not None:
        who = f"device:{actor.device.pk}"
    elif actor.api_key is not None:
        who = f"key:{actor.api_key.pk}"
    else:
        who = f"user:{actor.user.pk}"
    return f"{who}:{_scanned_value(item)}:{item['scan_type']}:{canonical_time(item['occurred_at'])}"


def scans_record(*, actor: Actor, items: list[dict]) -> list[ScanOutcome]:
    """Record a batch of scans in order; one outcome per item, in the same order.

    Items are validated dicts: `barcode` or `reference`, `scan_type`, `occurred_at` (aware),
    optional `event_id`, `location` (Point), `hub` (a Hub of the organization), `reason_code`,
    `note`, and the carrier's own `carrier_status_code` / `carrier_reason_code` (kept as
    sent). A malformed item raises `InvalidInput` (400) before anything is written.

    One transaction. The batch's shipments are locked up front in primary-key order (so two
    batches touching the same parcels cannot deadlock); each scan then runs in its own
    savepoint, so a refused transition affects only its own scan. Replays (same idempotency key,
    also inside one batch) return the stored scan's outcome with `duplicate=True` and write
    nothing. Each stored scan emits `scan.recorded`; status changes emit
    `shipment.status_changed` (through `shipment_transition`), custody entries
    `custody.appended` (docs/EVENTS.md).
    """
    errors = {str(i): p for i, item in enumerate(items) if (p := scan_item_problems(item))}
    if errors:
        first = next(iter(errors))
        raise InvalidInput(
            f"Scan {first} is invalid ({len(errors)} invalid in all); nothing was stored.",
            fields={"scans": {i: {f: [m] for f, m in p.items()} for i, p in errors.items()}},
        )
    keys = [scan_idempotency_key(actor=actor, item=item) for item in items]
    now = timezone.now()
    outcomes: list[ScanOutcome] = []
    with transaction.atomic():
        shipments = _lock_shipments(actor, items)
        # After the locks: a concurrent replay of this batch has committed by now.
        stored = {
            scan.idempotency_key: scan
            for scan in Scan.objects.filter(idempotency_key__in=set(keys)).select_related(
                "shipment"
            )
        }
        for index, (item, key) in enumerate(zip(items, keys, strict=True)):
            previous = stored.get(key)
            if previous is None:
                outcome = _record_one(
                    actor=actor, index=index, item=item, key=key, now=now, shipments=shipments
                )
                if not outcome.duplicate:
                    stored[key] = outcome.scan
            else:
                outcome = _replayed(actor, index, previous, shipments)
            outcomes.append(outcome)
    return outcomes


# ---------------------------------------------------------------------------------------------


def _scanned_value(item: dict) -> str:
    return item.get("barcode") or item["reference"]


def _visible_to(actor: Actor, shipment: Shipment | None) -> bool:
    # A device or a carrier-bound key/person only ever sees its own carrier's shipments.
    return is_visible(actor, shipment)


def _lock_shipments(actor: Actor, items: list[dict]) -> dict[tuple[str, str], Shipment]:
    """`{("barcode"|"reference", value): locked shipment}` for the shipments the actor may
    scan; the others are simply absent (they behave as unknown barcodes)."""
    barcodes = {item["barcode"] for item in items if item.get("barcode")}
    references = {item["reference"] for item in items if item.get("reference")}
    queryset = (
        visible_to(actor, Shipment).select_for_update(of=("self",)).select_related("carrier", "hub")
    )
    found: list[Shipment] = []
    if barcodes or references:
        found = list(
            queryset.filter(Q(barcode__in=barcodes) | Q(reference__in=references)).order_by("pk")
        )
    by_value: dict[tuple[str, str], Shipment] = {}
    for shipment in found:
        if shipment.barcode in barcodes:
            by_value[("barcode", shipment.barcode)] = shipment
        if shipment.reference in references:
            by_value[("reference", shipment.reference)] = shipment
    return by_value


def _lookup(item: dict) -> tuple[str, str]:
    return ("barcode", item["barcode"]) if item.get("barcode") else ("reference", item["reference"])


def _replayed(
    actor: Actor, index: int, scan: Scan, shipments: dict[tuple[str, str], Shipment]
) -> ScanOutcome:
    shipment = scan.shipment
    if not _visible_to(actor, shipment):
        # Someone else's replayed event id: answer as for a barcode the caller cannot see.
        return ScanOutcome(
            index=index,
            scan=scan,
            result=ScanResult.UNKNOWN_BARCODE,
            duplicate=True,
            shipment=None,
            detail=_UNKNOWN,
        )
    # Report the shipment as it is now (a later scan of this batch may have moved it).
    current = next((s for s in shipments.values() if s.pk == shipment.pk), shipment)
    return ScanOutcome(
        index=index,
        scan=scan,
        result=scan.result,
        duplicate=True,
        shipment=current,
        detail=scan.detail,
    )


_UNKNOWN = "No shipment with this barcode."


def _record_one(
    *,
    actor: Actor,
    index: int,
    item: dict,
    key: str,
    now: datetime,
    shipments: dict[tuple[str, str], Shipment],
) -> ScanOutcome:
    lookup = _lookup(item)
    shipment = shipments.get(lookup)
    scan = Scan(
        organization=actor.organization,
        idempotency_key=key,
        device=actor.device,
        api_key=actor.api_key,
        event_id=item.get("event_id") or "",
        barcode=lookup[1],
        shipment=shipment,
        scan_type=item["scan_type"],
        occurred_at=item["occurred_at"],
        received_at=now,
        location=item.get("location"),
        hub=item.get("hub"),
        reason_code=item.get("reason_code") or "",
        carrier_status_code=(item.get("carrier_status_code") or "")[:64],
        carrier_reason_code=(item.get("carrier_reason_code") or "")[:64],
        note=(item.get("note") or "")[:500],
        result=ScanResult.UNKNOWN_BARCODE if shipment is None else ScanResult.RECORDED,
        detail=_UNKNOWN if shipment is None else "",
    )
    try:
        with transaction.atomic():
            scan.save(force_insert=True)
            if shipment is not None:
                shipment = _apply(actor=actor, scan=scan, shipment=shipment, now=now)
                shipments[lookup] = shipment
                # The same parcel may be in the map under its other spelling.
                for other_key, other in list(shipments.items()):
                    if other.pk == shipment.pk:
                        shipments[other_key] = shipment
            carrier_id = shipment.carrier_id if shipment is not None else actor.carrier_id
            emit(catalog.scan_recorded(scan, shipment=shipment, carrier_id=carrier_id))
    except IntegrityError as exc:
        if "scan_idempotency_key" not in str(exc):
            raise
        # A concurrent request stored the same scan first: this one is its replay.
        scan = Scan.objects.select_related("shipment").get(idempotency_key=key)
        return _replayed(actor, index, scan, shipments)
    return ScanOutcome(
        index=index,
        scan=scan,
        result=scan.result,
        duplicate=False,
        shipment=shipment,
        detail=scan.detail,
    )


def _apply(*, actor: Actor, scan: Scan, shipment: Shipment, now: datetime) -> Shipment:
    """Decide the scan's result, change the status when it should and append exactly one
    custody entry. Runs in the scan's savepoint with the shipment locked; returns the shipment
    as it is afterwards."""
    at = min(scan.occurred_at, now)  # a phone clock ahead of ours must not date the future
    target = SCAN_STATUS[scan.scan_type]
    location = scan.location or (scan.hub.location if scan.hub_id else None)
    details = _custody_details(scan)
    decision = _decide_without_transition(actor, scan, shipment, target, at, details)
    if decision is None:
        moved, decision = _transition(actor, scan, shipment, target, at, location, details)
        if moved is not None:  # we hold the lock and checked the status: it moved
            _set_result(scan, ScanResult.APPLIED, "")
            return moved
    kind, custodian, result, detail = decision

    _set_result(scan, result, detail)
    custody_append(
        shipment=shipment,
        kind=kind,
        actor=actor.label,
        occurred_at=at,
        custodian=custodian,
        location=location,
        details={
            **details,
            "result": result,
            "status": shipment.status,
            **({"note": scan.note} if scan.note else {}),
        },
    )
    return shipment


# What a scan that does not move the status records: (custody kind, new custodian or None,
# result, detail).
_Decision = tuple[str, str | None, str, str]


def _custody_details(scan: Scan) -> dict:
    return {
        "scan": scan.pk,
        "scan_type": scan.scan_type,
        "barcode": scan.barcode,
        **({"hub": scan.hub.code} if scan.hub_id else {}),
        **({"reason_code": scan.reason_code} if scan.reason_code else {}),
    }


def _decide_without_transition(
    actor: Actor, scan: Scan, shipment: Shipment, target: str | None, at: datetime, details: dict
) -> _Decision | None:
    """The result of a scan that cannot or need not change the status (a handoff, a final
    shipment, the status it already has, an event older than the current status); None when
    the status machine must be asked. Marks a late scan in `details`."""
    kind, custodian = CustodyKind.SCAN, None
    if target is None:  # picked up / loaded: a handoff
        if shipment.status in FINAL_STATUSES:
            verb = "picked up" if scan.scan_type == ScanType.PICKED_UP else "loaded"
            result = ScanResult.ILLEGAL
            detail = f"The shipment is {shipment.status}: it cannot be {verb} any more."
        else:
            kind = CustodyKind.HANDOFF
            custodian = _handoff_custodian(actor, shipment, scan.scan_type)
            result, detail = ScanResult.RECORDED, f"Handed over to {custodian}."
        return kind, custodian, result, detail
    if shipment.status == target:
        return kind, custodian, ScanResult.UNCHANGED, f"The shipment was already {target}."
    if (
        target in SHIPMENT_TRANSITIONS[shipment.status]
        and shipment.status != S.INFO_RECEIVED
        and at < shipment.status_changed_at
    ):
        detail = (
            f"Older than the current status ({shipment.status} since "
            f"{canonical_time(shipment.status_changed_at)}): recorded, status unchanged."
        )
        details["late"] = True
        return kind, custodian, ScanResult.RECORDED, detail
    return None


def _transition(
    actor: Actor,
    scan: Scan,
    shipment: Shipment,
    target: str,
    at: datetime,
    location,
    details: dict,
) -> tuple[Shipment | None, _Decision | None]:
    """Ask the status machine: (the moved shipment, None), or (None, the refusal to record;
    marked in `details`)."""
    try:
        moved = shipment_transition(
            shipment=shipment,
            to_status=target,
            actor=actor,
            at=at,
            source=SCAN_SOURCE,
            note=_transition_note(scan),
            custody={
                "kind": CustodyKind.SCAN,
                # Arriving at a hub: the hub that scanned it holds it now.
                **(
                    {"custodian": Custodian.hub(scan.hub.code)}
                    if target == S.AT_HUB and scan.hub_id
                    else {}
                ),
                "location": location,
                "details": {**details, "result": ScanResult.APPLIED},
            },
        )
    except IllegalTransition as exc:
        allowed = " ".join(exc.fields.get("status", []))
        details["refused"] = target
        return None, (CustodyKind.SCAN, None, ScanResult.ILLEGAL, f"{exc.detail} {allowed}".strip())
    return moved.shipment, None


def _transition_note(scan: Scan) -> str:
    if not scan.reason_code:
        return scan.note
    label = FailureReason(scan.reason_code).label
    return f"{label}: {scan.note}" if scan.note else label


def _set_result(scan: Scan, result: str, detail: str) -> None:
    scan.result = result
    scan.detail = detail[:300]
    scan.save(update_fields=["result", "detail"])


def _handoff_custodian(actor: Actor, shipment: Shipment, scan_type: str) -> str:
    """Who holds the parcel after a pick-up or loading scan: the scanning device's driver (or,
    when loading, its vehicle); for a loading scan by someone else, the crew of the shipment's
    open route; otherwise its carrier. Same spelling as `custodian_after`."""
    device = actor.device
    if device is not None:
        if device.driver_id is not None:
            return Custodian.driver(device.driver_id, device.driver.name)
        if scan_type == ScanType.LOADED and device.vehicle_id is not None:
            return Custodian.vehicle(device.vehicle_id, device.vehicle.plate)
    if scan_type == ScanType.LOADED:
        crew = (
            shipment.stops.filter(status__in=OPEN_STOP_STATUSES)
            .order_by("-route__date")
            .values_list(
                "route__driver_id",
                "route__driver__name",
                "route__vehicle_id",
                "route__vehicle__plate",
            )
            .first()
        )
        if crew and crew[0]:
            return Custodian.driver(crew[0], crew[1])
        if crew and crew[2]:
            return Custodian.vehicle(crew[2], crew[3])
    if shipment.carrier_id is not None:
        return Custodian.carrier(shipment.carrier.code)
    return actor.label


__all__ = ["SCAN_STATUS", "ScanOutcome", "scan_idempotency_key", "scans_record"]
