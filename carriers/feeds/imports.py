"""Manifest and status file imports: every row checked first, errors reported by line, then
all rows applied in one transaction or none (docs/CARRIER_FEEDS.md, "File import").

Manifest rows create shipments of the feed's carrier through
`tracking.services.tracking_links.shipments_bulk_create_with_links` (its batch rules:
unique references and barcodes, windows, ...). Status rows become carrier events and go
through the same normalize + scan path as the webhook (`services.events_apply`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from carriers.feeds import files
from carriers.feeds.adapters import mapping_for, normalize
from carriers.feeds.adapters.base import (
    CarrierStatusEvent,
    as_location,
    as_text,
    as_time,
)
from carriers.feeds.errors import FeedConfigError, PayloadError, RowErrors
from carriers.feeds.models import (
    CarrierFeed,
    EventSource,
    FeedImport,
    ImportKind,
    ImportState,
)
from carriers.feeds.services import event_key, events_apply, feed_actor
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from tracking.api.serializers import ShipmentBulkItemSerializer
from tracking.models import Hub
from tracking.services.shipments import shipments_batch_problems
from tracking.services.tracking_links import shipments_bulk_create_with_links


@dataclass
class ImportResult:
    feed_import: FeedImport
    errors: list[dict]


def feed_import_file(
    *,
    actor: Actor,
    feed: CarrierFeed,
    kind: str,
    name: str,
    content: bytes,
    dry_run: bool,
    content_type: str = "",
) -> FeedImport:
    """Check every row of a manifest or status file, then (not a dry run, no errors) apply
    them all in one transaction. Returns the stored `FeedImport` (kept for every upload, the
    rejected and dry ones too); raises `RowErrors` (400, every error by line) after storing a
    rejected one, `FileRejected` / `UnsupportedFileType` for a file that cannot be read."""
    if kind not in ImportKind.values:
        raise FeedConfigError(
            f"kind must be one of: {', '.join(ImportKind.values)}.",
            fields={"kind": [f"Choose one of: {', '.join(ImportKind.values)}."]},
        )
    fields, required = (
        (files.MANIFEST_COLUMNS, files.MANIFEST_REQUIRED)
        if kind == ImportKind.MANIFEST
        else (files.STATUS_COLUMNS, files.STATUS_REQUIRED)
    )
    table = files.read_table(
        name=name,
        content=content,
        fields=fields,
        required=required,
        columns=(feed.config or {}).get("columns"),
        content_type=content_type,
    )
    record = FeedImport(
        organization=actor.organization,
        feed=feed,
        carrier_id=feed.carrier_id,
        kind=kind,
        file_name=name[:255],
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        row_count=len(table.rows),
        dry_run=dry_run,
        created_by=actor.user if actor.user is not None and actor.user.pk else None,
    )
    zone = _zone(feed, actor)
    if kind == ImportKind.MANIFEST:
        items, errors = _manifest_items(actor, feed, table, zone)
    else:
        items, errors = _status_events(feed, table, zone)
    if errors:
        record.state = ImportState.REJECTED
        record.errors = errors
        record.save()
        raise RowErrors(errors, import_id=record.pk)
    if dry_run:
        record.state = ImportState.VALIDATED
        record.summary = _dry_summary(kind, feed, items)
        record.save()
        return record
    with transaction.atomic():
        record.state = ImportState.APPLIED
        record.applied_at = timezone.now()
        record.save()
        if kind == ImportKind.MANIFEST:
            created, _tokens = shipments_bulk_create_with_links(
                actor=feed_actor(actor, feed), items=items
            )
            record.summary = {"created": len(created)}
        else:
            outcomes = events_apply(
                actor=actor,
                feed=feed,
                events=items,
                source=EventSource.FILE,
                feed_import=record,
            )
            record.summary = _status_summary(outcomes)
        record.save(update_fields=["summary"])
    return record


def _zone(feed: CarrierFeed, actor: Actor):
    return ZoneInfo((feed.config or {}).get("timezone") or actor.organization.time_zone or "UTC")


def _error(line: int, column: str, message: str) -> dict:
    return {"line": line, "column": column, "message": message}


# --- manifests -------------------------------------------------------------------------------


def _manifest_items(actor: Actor, feed: CarrierFeed, table: files.Table, zone):
    errors: list[dict] = []
    hub_codes = {str(r.values.get("hub")) for r in table.rows if r.values.get("hub")}
    hubs = {h.code: h for h in visible_to(actor, Hub).filter(code__in=hub_codes)}
    carrier = feed.carrier
    items: list[dict | None] = []
    for row in table.rows:
        data = _manifest_data(row, zone)
        column = table.columns.get
        if "location" in data and data["location"] is None:
            errors.append(
                _error(row.line, column("lat", "lat"), "lat and lon must both be numbers.")
            )
            data.pop("location")
        hub_code = data.pop("hub", None)
        parsed = ShipmentBulkItemSerializer(data=data, context={"actor": actor})
        if not parsed.is_valid():
            for field, messages in parsed.errors.items():
                for message in messages if isinstance(messages, list) else [messages]:
                    errors.append(_error(row.line, column(field, field), _text(message)))
            items.append(None)
            continue
        item = dict(parsed.validated_data)
        item["carrier"] = carrier
        if hub_code:
            hub = hubs.get(str(hub_code))
            if hub is None:
                errors.append(_error(row.line, column("hub", "hub"), f"No hub {hub_code!r}."))
            item["hub"] = hub
        else:
            item.pop("hub", None)
        items.append(item)
    lines = [row.line for row in table.rows]
    for index, field, message in shipments_batch_problems(actor.organization.pk, items).items():
        errors.append(_error(lines[index], table.columns.get(field, field), message))
    errors.sort(key=lambda e: (e["line"], e["column"]))
    return [i for i in items if i is not None], errors


def _manifest_data(row: files.Row, zone) -> dict:
    data = {}
    for field, value in row.values.items():
        if value in (None, ""):
            continue
        value = files.as_aware(value, zone)
        if field in ("promised_window_start", "promised_window_end") and isinstance(value, str):
            # Text without an offset is the feed's local time, like an Excel cell.
            try:
                parsed = as_time(value, path=field, zone=zone)
                value = parsed.isoformat()
            except PayloadError:
                pass  # the serializer names it
        elif field == "parcel_count" and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        elif field not in ("lat", "lon", "parcel_count", "weight_kg"):
            value = str(value)
        data[field] = value
    lat, lon = data.pop("lat", None), data.pop("lon", None)
    if lat is not None or lon is not None:
        try:
            location = as_location(lat, lon, path="lat")
            data["location"] = {"lon": location[0], "lat": location[1]} if location else None
        except PayloadError:
            data["location"] = None
    return data


def _text(message) -> str:
    if isinstance(message, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in message.items())
    if isinstance(message, list):
        return "; ".join(_text(m) for m in message)
    return str(message)


# --- status files ----------------------------------------------------------------------------


def _status_events(feed: CarrierFeed, table: files.Table, zone):
    errors: list[dict] = []
    events: list[CarrierStatusEvent] = []
    column = table.columns.get
    for row in table.rows:
        values = {k: files.as_aware(v, zone) for k, v in row.values.items()}
        try:
            barcode = as_text(values.get("barcode"), path="barcode")
            reference = as_text(values.get("reference"), path="reference")
            if not barcode and not reference:
                raise PayloadError("Give the barcode (or the reference).", path="barcode")
            event = CarrierStatusEvent(
                event_id=as_text(values.get("event_id"), path="event_id", max_length=100),
                barcode=barcode,
                reference=reference,
                carrier_status_code=as_text(values.get("status"), path="status", required=True),
                carrier_reason_code=as_text(values.get("reason"), path="reason"),
                occurred_at=as_time(values.get("occurred_at"), path="occurred_at", zone=zone),
                location=as_location(values.get("lat"), values.get("lon"), path="lat"),
                note=as_text(values.get("note"), path="note", max_length=500),
                raw={"line": row.line, **{k: v for k, v in values.items() if v not in (None, "")}},
            )
        except PayloadError as exc:
            errors.append(_error(row.line, column(exc.path, exc.path), exc.message))
            continue
        events.append(event)
    return events, errors


def _dry_summary(kind: str, feed: CarrierFeed, items) -> dict:
    if kind == ImportKind.MANIFEST:
        return {"would_create": len(items)}
    mapping = mapping_for(feed.adapter, feed.config)
    flagged = sum(normalize(e, mapping).flagged for e in items)
    keys = {event_key(e) for e in items}
    already = feed.events.filter(event_key__in=keys).count()
    return {"events": len(items), "would_flag": flagged, "already_received": already}


def _status_summary(outcomes) -> dict:
    summary: dict[str, int] = {"events": len(outcomes), "duplicates": 0, "flagged": 0}
    for outcome in outcomes:
        if outcome.duplicate:
            summary["duplicates"] += 1
            continue
        summary["flagged"] += outcome.event.flagged
        summary[outcome.event.result] = summary.get(outcome.event.result, 0) + 1
    return summary


__all__ = ["feed_import_file"]
