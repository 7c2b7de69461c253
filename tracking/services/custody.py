"""The chain of custody: append, verify, export.

Each shipment has its own chain. An entry's hash is
`sha256(prev_hash || canonical_json(content))`, where the content is everything that matters
about the event (who, what, where, when, evidence digests, who holds the parcel afterwards).
Changing, removing or reordering any entry breaks every hash after it, and `custody_verify`
names the first broken link. The database refuses UPDATE and DELETE on the table (a trigger,
see tracking/migrations/0003_ingest.py); the hashes catch what someone with superuser rights
does anyway. `scripts/verify_custody.py` checks an export offline with the same rules.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.gis.geos import Point
from django.utils import timezone

from control_tower.events import catalog, emit
from tracking.models import CustodyEntry, Shipment

GENESIS_HASH = "0" * 64
CHAIN_FORMAT = "ct-custody-v1"


class CustodyKind:
    STATUS = "status"  # a status change through the status machine
    SCAN = "scan"  # a barcode scan (also when it changed nothing or was refused)
    POD = "pod"  # proof of delivery captured
    HANDOFF = "handoff"  # explicit handoff between custodians
    ROUTE = "route"  # put on or taken off a route's stop (the custodian does not change)
    ATTEMPT = "attempt"  # evidence of a failed delivery attempt (the custodian does not change)


class Custodian:
    """How the chain names who holds a parcel, spelled once: `<kind>:<id>:<label>` for people
    and vehicles (the id survives a rename), `<kind>:<code>` for places and companies."""

    SHIPPER = "shipper"

    @staticmethod
    def driver(driver_id: int, name: str) -> str:
        return f"driver:{driver_id}:{name}"

    @staticmethod
    def vehicle(vehicle_id: int, plate: str) -> str:
        return f"vehicle:{vehicle_id}:{plate}"

    @staticmethod
    def carrier(code: str | None) -> str:
        return f"carrier:{code}" if code else "carrier"

    @staticmethod
    def hub(code: str | None) -> str:
        return f"hub:{code}" if code else "hub"

    @staticmethod
    def recipient(name: str) -> str:
        return f"recipient:{name}"


def canonical_time(value: datetime) -> str:
    """UTC, microseconds, `Z`: one spelling per instant."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_location(point: Point | None) -> list[float] | None:
    if point is None:
        return None
    return [round(point.x, 7), round(point.y, 7)]


def entry_content(entry: CustodyEntry) -> dict:
    """The hashed content of an entry, exactly as the export writes it."""
    return {
        "organization": entry.organization_id,
        "shipment": entry.shipment_id,
        "sequence": entry.sequence,
        "kind": entry.kind,
        "actor": entry.actor,
        "custodian": entry.custodian,
        "occurred_at": canonical_time(entry.occurred_at),
        "location": canonical_location(entry.location),
        "evidence": entry.evidence,
        "details": entry.details,
    }


def canonical_json(content: dict) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, content: dict) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical_json(content)).hexdigest()


def custody_append(
    *,
    shipment: Shipment,
    kind: str,
    actor: str,
    occurred_at: datetime | None = None,
    custodian: str | None = None,
    location: Point | None = None,
    evidence: dict | None = None,
    details: dict | None = None,
) -> CustodyEntry:
    """Append one entry. The caller must hold the shipment's row lock (`select_for_update`)
    inside a transaction: that is what serializes appends to one chain. `custodian` defaults
    to the previous entry's (nobody took the parcel over)."""
    last = (
        CustodyEntry.objects.filter(shipment_id=shipment.pk)
        .order_by("-sequence")
        .only("sequence", "hash", "custodian")
        .first()
    )
    entry = CustodyEntry(
        organization_id=shipment.organization_id,
        shipment_id=shipment.pk,
        sequence=1 if last is None else last.sequence + 1,
        kind=kind,
        actor=actor[:200],
        custodian=(custodian if custodian is not None else (last.custodian if last else ""))[:200],
        occurred_at=occurred_at or timezone.now(),
        location=location,
        evidence=evidence or {},
        details=details or {},
        prev_hash=GENESIS_HASH if last is None else last.hash,
    )
    # Round-trip the JSON so what is hashed is exactly what PostgreSQL will give back.
    entry.evidence = json.loads(canonical_json(entry.evidence))
    entry.details = json.loads(canonical_json(entry.details))
    entry.hash = chain_hash(entry.prev_hash, entry_content(entry))
    entry.save(force_insert=True)
    emit(catalog.custody_appended(entry, carrier_id=shipment.carrier_id))
    return entry


@dataclass(frozen=True)
class Verification:
    valid: bool
    entries: int
    first_broken_sequence: int | None = None
    first_broken_id: int | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return {
            "valid": self.valid,
            "entries": self.entries,
            "first_broken": None
            if self.valid
            else {
                "sequence": self.first_broken_sequence,
                "id": self.first_broken_id,
                "reason": self.reason,
            },
        }


def verify_links(links: list[dict]) -> Verification:
    """Check exported links (dicts with `content`, `prev_hash`, `hash`, optional `id`) in
    order. Shared by the API and the offline script."""
    prev = GENESIS_HASH
    for position, link in enumerate(links, start=1):
        content = link["content"]
        problem = ""
        if content.get("sequence") != position:
            problem = f"expected sequence {position}, found {content.get('sequence')}"
        elif link["prev_hash"] != prev:
            problem = "prev_hash does not match the previous entry's hash"
        elif chain_hash(prev, content) != link["hash"]:
            problem = "content does not match its hash (the entry was altered)"
        if problem:
            return Verification(
                valid=False,
                entries=len(links),
                first_broken_sequence=content.get("sequence"),
                first_broken_id=link.get("id"),
                reason=problem,
            )
        prev = link["hash"]
    return Verification(valid=True, entries=len(links))


def export_links(shipment: Shipment) -> list[dict]:
    return [
        {
            "id": entry.pk,
            "content": entry_content(entry),
            "prev_hash": entry.prev_hash,
            "hash": entry.hash,
        }
        for entry in CustodyEntry.objects.filter(shipment_id=shipment.pk).order_by("sequence")
    ]


def custody_verify(shipment: Shipment) -> Verification:
    return verify_links(export_links(shipment))


def custody_export(shipment: Shipment) -> dict:
    """A self-contained document `scripts/verify_custody.py` can check without the database."""
    return {
        "format": CHAIN_FORMAT,
        "algorithm": "sha256(prev_hash_hex_ascii || canonical_json(content))",
        "canonical_json": "UTF-8, keys sorted, separators (',', ':'), no ASCII escaping",
        "genesis_prev_hash": GENESIS_HASH,
        "shipment": {"id": shipment.pk, "reference": shipment.reference},
        "exported_at": canonical_time(timezone.now()),
        "links": export_links(shipment),
    }
