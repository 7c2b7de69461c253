"""Carrier feeds, the writes: configure a feed, receive a carrier's status events through its
adapter and apply them with the one scan service, re-process flagged events.

Every event is kept (`InboundCarrierEvent`), whatever became of it. Normalized events go
through `tracking.services.scans.scans_record` as the feed's carrier (so custody, shipment
events, out-of-order rules and idempotency are the scan service's: a late event never reopens
a delivered shipment, and a barcode of another carrier is an unknown barcode). Unknown codes
are stored, flagged and not applied; `events_reprocess` applies them once the feed's mapping
knows them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from carriers.feeds import signing
from carriers.feeds.adapters import (
    CarrierStatusEvent,
    adapter_named,
    config_problems,
    mapping_for,
    normalize,
)
from carriers.feeds.errors import FeedConfigError, PayloadError, SignatureInvalid
from carriers.feeds.models import (
    CarrierFeed,
    EventResult,
    EventSource,
    FeedImport,
    InboundCarrierEvent,
)
from carriers.models import Carrier
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from tracking.services.scans import scans_record

# --- feeds ---------------------------------------------------------------------------------


def _check_config(adapter: str, config) -> None:
    problems = config_problems(adapter, config)
    if problems:
        first_path, messages = next(iter(problems.items()))
        raise FeedConfigError(f"{first_path}: {messages[0]}", fields=problems)


def feed_create(
    *,
    actor: Actor,
    carrier: Carrier,
    name: str,
    adapter: str,
    config: dict,
    is_active: bool = True,
    signing_secret: str = "",
) -> CarrierFeed:
    """A new feed for `carrier` (of the actor's organization, visible to the actor); the
    config is validated for the adapter first (`FeedConfigError` names each problem). With a
    `signing_secret`, webhook bodies must be signed (stored encrypted)."""
    _check_config(adapter, config)
    return CarrierFeed.objects.create(
        organization=actor.organization,
        carrier=carrier,
        name=name,
        adapter=adapter,
        config=config,
        is_active=is_active,
        signing_secret_encrypted=signing.encrypt(signing_secret),
    )


def feed_update(*, feed: CarrierFeed, **changes) -> CarrierFeed:
    """Change name, adapter, config, is_active or signing_secret ("" removes it); the
    resulting config is validated whole."""
    adapter = changes.get("adapter", feed.adapter)
    config = changes.get("config", feed.config)
    _check_config(adapter, config)
    if "signing_secret" in changes:
        feed.signing_secret_encrypted = signing.encrypt(changes.pop("signing_secret"))
    for name, value in changes.items():
        setattr(feed, name, value)
    feed.save()
    return feed


def feed_signature_header(feed: CarrierFeed) -> str:
    return getattr(adapter_named(feed.adapter), "SIGNATURE_HEADER", signing.DEFAULT_HEADER)


def feed_verify_signature(*, feed: CarrierFeed, body: bytes, headers) -> None:
    """Nothing for an unsigned feed; otherwise `SignatureInvalid` (401) unless the adapter's
    header holds base64(HMAC-SHA256(secret, raw body))."""
    if not feed.signing_secret_encrypted:
        return
    header = feed_signature_header(feed)
    secret = signing.decrypt(feed.signing_secret_encrypted)
    if not signing.signature_matches(secret, body, headers.get(header)):
        raise SignatureInvalid(
            f"Missing or wrong {header} header (base64 HMAC-SHA256 of the raw body with the "
            "feed's secret); nothing was stored.",
            fields={header: ["Invalid signature."]},
        )


def feed_actor(actor: Actor, feed: CarrierFeed) -> Actor:
    """Who applies the feed's events: the caller, narrowed to the feed's carrier, so a feed
    can only ever move its own carrier's shipments (even when an admin posts)."""
    return dataclasses.replace(actor, carrier_id=feed.carrier_id)


# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventOutcome:
    index: int
    event: InboundCarrierEvent
    duplicate: bool

    def as_dict(self) -> dict:
        event = self.event
        shipment = event.shipment
        return {
            "index": self.index,
            "id": event.pk,
            "event_key": event.event_key,
            "barcode": event.barcode or event.reference,
            "carrier_status_code": event.carrier_status_code,
            "carrier_reason_code": event.carrier_reason_code,
            "scan_type": event.scan_type or None,
            "reason_code": event.reason_code or None,
            "flagged": event.flagged,
            "result": event.result,
            "duplicate": self.duplicate,
            "shipment": None
            if shipment is None
            else {"id": shipment.pk, "reference": shipment.reference, "status": shipment.status},
            "detail": event.detail,
        }


def event_key(event: CarrierStatusEvent) -> str:
    """The carrier's event id; without one, a digest of what the event says (the same event
    sent twice is the same key)."""
    if event.event_id:
        return f"id:{event.event_id}"
    content = json.dumps(
        [
            event.barcode,
            event.reference,
            event.carrier_status_code,
            event.carrier_reason_code,
            event.occurred_at.isoformat(),
        ]
    )
    return "h:" + hashlib.sha256(content.encode()).hexdigest()


def events_parse(*, feed: CarrierFeed, payload) -> list[CarrierStatusEvent]:
    """The feed's adapter on a decoded body; `PayloadError` (400, with the JSON path) before
    anything is stored. At most CARRIER_FEED_MAX_EVENTS events per call."""
    events = adapter_named(feed.adapter).parse(payload, config=feed.config)
    limit = getattr(settings, "CARRIER_FEED_MAX_EVENTS", 500)
    if len(events) > limit:
        raise PayloadError(f"At most {limit} events per request; split it.", path="$")
    if not events:
        raise PayloadError("No events in this body.", path="$")
    return events


def events_receive(
    *,
    actor: Actor,
    feed: CarrierFeed,
    payload,
    source: str = EventSource.WEBHOOK,
) -> list[EventOutcome]:
    """Parse a carrier's body with the feed's adapter and apply it (`events_apply`)."""
    return events_apply(
        actor=actor, feed=feed, events=events_parse(feed=feed, payload=payload), source=source
    )


def events_apply(
    *,
    actor: Actor,
    feed: CarrierFeed,
    events: list[CarrierStatusEvent],
    source: str,
    feed_import: FeedImport | None = None,
) -> list[EventOutcome]:
    """Store and apply parsed events in order; one outcome each.

    One transaction, the feed row locked (two deliveries of the same events cannot both
    apply them). An event whose key the feed has seen answers the stored row with
    `duplicate=True` and writes nothing. Mapped events become scans through `scans_record`
    (its events: `scan.recorded`, `shipment.status_changed`, `custody.appended`); unknown
    codes are stored flagged with result `unmapped`.
    """
    mapping = mapping_for(feed.adapter, feed.config)
    keys = [event_key(e) for e in events]
    now = timezone.now()
    with transaction.atomic():
        CarrierFeed.objects.select_for_update().filter(pk=feed.pk).first()
        stored = {
            row.event_key: row
            for row in InboundCarrierEvent.objects.filter(
                feed=feed, event_key__in=set(keys)
            ).select_related("shipment")
        }
        rows: dict[int, InboundCarrierEvent] = {}
        duplicates: dict[int, InboundCarrierEvent | int] = {}  # int: a repeat in this body
        pending: dict[str, int] = {}
        for index, (event, key) in enumerate(zip(events, keys, strict=True)):
            if key in stored:
                duplicates[index] = stored[key]
                continue
            if key in pending:  # the same event twice in one body
                duplicates[index] = pending[key]  # resolved below
                continue
            normalized = normalize(event, mapping)
            row = InboundCarrierEvent(
                organization=actor.organization,
                carrier_id=feed.carrier_id,
                feed=feed,
                source=source,
                feed_import=feed_import,
                event_key=key,
                raw=_jsonable(event.raw),
                barcode=event.barcode,
                reference=event.reference,
                carrier_status_code=event.carrier_status_code,
                carrier_reason_code=event.carrier_reason_code,
                occurred_at=event.occurred_at,
                location=list(event.location) if event.location else None,
                note=event.note,
                scan_type=normalized.scan_type or "",
                reason_code=normalized.reason_code,
                flagged=normalized.flagged,
                result=EventResult.UNMAPPED if normalized.flagged else EventResult.IGNORED,
                detail=normalized.detail[:300],
                received_at=now,
            )
            rows[index] = row
            pending[key] = index
        _apply_scans(actor, feed, [r for r in rows.values() if _applicable(r)], now)
        InboundCarrierEvent.objects.bulk_create(list(rows.values()))
        outcomes = []
        for index in range(len(events)):
            if index in rows:
                outcomes.append(EventOutcome(index, rows[index], False))
            else:
                found = duplicates[index]
                row = rows[found] if isinstance(found, int) else found
                outcomes.append(EventOutcome(index, row, True))
    return outcomes


def events_reprocess(*, actor: Actor, events) -> list[InboundCarrierEvent]:
    """Normalize flagged events again with their feed's current mapping and apply those it now
    knows (a queryset or list of events the actor may see). Events still unknown stay
    flagged. Idempotent: an applied event is no longer flagged."""
    changed: list[InboundCarrierEvent] = []
    now = timezone.now()
    with transaction.atomic():
        locked = list(
            visible_to(actor, InboundCarrierEvent)
            .filter(pk__in=[e.pk for e in events], flagged=True)
            .select_for_update(of=("self",))
            .select_related("feed")
            .order_by("occurred_at", "id")
        )
        by_feed: dict[int, list[InboundCarrierEvent]] = {}
        for row in locked:
            by_feed.setdefault(row.feed_id, []).append(row)
        for rows in by_feed.values():
            feed = rows[0].feed
            mapping = mapping_for(feed.adapter, feed.config)
            ready = []
            for row in rows:
                normalized = normalize(_as_event(row), mapping)
                if normalized.flagged:
                    row.detail = normalized.detail[:300]
                    row.save(update_fields=["detail"])
                    continue
                row.scan_type = normalized.scan_type or ""
                row.reason_code = normalized.reason_code
                row.flagged = False
                row.result = EventResult.IGNORED
                row.detail = normalized.detail[:300]
                ready.append(row)
            _apply_scans(actor, feed, [r for r in ready if _applicable(r)], now)
            for row in ready:
                row.save(
                    update_fields=[
                        "scan_type",
                        "reason_code",
                        "flagged",
                        "result",
                        "detail",
                        "scan",
                        "shipment",
                        "processed_at",
                    ]
                )
            changed.extend(ready)
    return changed


# ---------------------------------------------------------------------------------------------


def _applicable(row: InboundCarrierEvent) -> bool:
    return bool(row.scan_type) and not row.flagged


def _scan_event_id(feed: CarrierFeed, key: str) -> str:
    # The scan's idempotency key (64 characters at most, unique in the organization).
    return f"cf{feed.pk}:" + hashlib.sha256(key.encode()).hexdigest()[:48]


def _apply_scans(actor: Actor, feed: CarrierFeed, rows: list[InboundCarrierEvent], now) -> None:
    """One `scans_record` batch for `rows` (in order); fills each row's scan, shipment,
    result and detail."""
    if not rows:
        return
    items = [
        {
            "event_id": _scan_event_id(feed, row.event_key),
            **({"barcode": row.barcode} if row.barcode else {"reference": row.reference}),
            "scan_type": row.scan_type,
            "occurred_at": row.occurred_at,
            "location": Point(*row.location, srid=4326) if row.location else None,
            "reason_code": row.reason_code if row.reason_code != "unknown" else "",
            "carrier_status_code": row.carrier_status_code,
            "carrier_reason_code": row.carrier_reason_code,
            "note": row.note,
        }
        for row in rows
    ]
    outcomes = scans_record(actor=feed_actor(actor, feed), items=items)
    for row, outcome in zip(rows, outcomes, strict=True):
        row.scan = outcome.scan
        row.shipment = outcome.shipment
        row.result = outcome.result
        row.detail = outcome.detail[:300]
        row.processed_at = now


def _as_event(row: InboundCarrierEvent) -> CarrierStatusEvent:
    return CarrierStatusEvent(
        event_id="",
        barcode=row.barcode,
        reference=row.reference,
        carrier_status_code=row.carrier_status_code,
        carrier_reason_code=row.carrier_reason_code,
        occurred_at=row.occurred_at,
        location=tuple(row.location) if row.location else None,
        note=row.note,
        raw=row.raw,
    )


def _jsonable(raw) -> dict:
    """The raw item as JSON (file rows may hold dates and decimals)."""
    return json.loads(json.dumps(raw, default=str))


__all__ = [
    "EventOutcome",
    "event_key",
    "events_apply",
    "events_parse",
    "events_receive",
    "events_reprocess",
    "feed_actor",
    "feed_create",
    "feed_signature_header",
    "feed_update",
    "feed_verify_signature",
]
