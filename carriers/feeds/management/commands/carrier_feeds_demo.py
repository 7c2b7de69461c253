"""`manage.py carrier_feeds_demo --org demo`: the demo 3PL `andes3pl` reports through an
AfterShip-shaped webhook feed. Imports today's manifest (20 shipments, generated into var/
from carriers/feeds/samples/andes3pl_manifest.csv), then posts status events through the real
service (out for delivery, deliveries, failed attempts with the carrier's reason codes, one
unknown code, one duplicate, one late out-of-order event) and prints what each did, with a
curl example for the webhook. Idempotent: run again, the same day changes nothing new."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import CommandError
from django.utils import timezone

from carriers.feeds import services
from carriers.feeds.imports import feed_import_file
from carriers.feeds.management.commands.import_carrier_file import command_actor
from carriers.feeds.models import CarrierFeed, ImportKind
from carriers.models import Carrier
from control_tower import services as tenancy_services
from control_tower.models import ApiKey
from control_tower.tenancy.actors import actor_for_api_key
from control_tower.tenancy.commands import OrganizationCommand
from control_tower.tenancy.roles import Scope
from tracking.models import Shipment

CARRIER = "andes3pl"
FEED_NAME = "AfterShip tracking"
KEY_NAME = "andes3pl status webhook (demo)"
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "andes3pl_manifest.csv"
NAMESPACE = uuid.UUID("5d7cf8a4-1c1e-4f0e-9b8e-2c6a3f1e0a16")


def render_manifest(template: str, *, now: dt.datetime, zone) -> str:
    """The sample with `{day}` (YYYYMMDD) and `{now±Nh}` (local ISO time) filled in."""
    local = now.astimezone(zone).replace(second=0, microsecond=0)

    def at(match):
        return (local + dt.timedelta(hours=int(match.group(1)))).isoformat()

    text = template.replace("{day}", local.strftime("%Y%m%d"))
    return re.sub(r"\{now([+-]\d+)h\}", at, text)


def aftership_update(barcode: str, tag: str, subtag: str, message: str, at: dt.datetime) -> dict:
    """One `tracking_update` webhook body as AfterShip sends it (docs/CARRIER_FEEDS.md)."""
    event_id = str(uuid.uuid5(NAMESPACE, f"{barcode}:{subtag}:{at.isoformat()}"))
    return {
        "event": "tracking_update",
        "event_id": event_id,
        "is_tracking_first_tag": True,
        "msg": {
            "tracking_number": barcode,
            "slug": CARRIER,
            "tag": tag,
            "subtag": subtag,
            "subtag_message": message,
            "checkpoints": [
                {
                    "slug": CARRIER,
                    "tag": tag,
                    "subtag": subtag,
                    "message": message,
                    "checkpoint_time": at.isoformat(),
                    "location": "La Serena, Coquimbo, CL",
                    "coordinates": [],
                }
            ],
        },
        "ts": int(at.timestamp()),
    }


class Command(OrganizationCommand):
    help = "Demo of a 3PL's carrier feed: a CSV manifest and AfterShip-shaped status webhooks."

    def handle_in_organization(self, organization, *args, **options):
        carrier = Carrier.objects.filter(code=CARRIER).first()
        if carrier is None:
            raise CommandError(f"No carrier {CARRIER!r}: run `manage.py load_demo` first.")
        owner = command_actor(organization)
        zone = ZoneInfo(organization.time_zone or "UTC")
        feed = CarrierFeed.objects.filter(carrier=carrier, name=FEED_NAME).first()
        if feed is None:
            feed = services.feed_create(
                actor=owner,
                carrier=carrier,
                name=FEED_NAME,
                adapter="aftership",
                config={"timezone": str(zone)},
            )
            self.stdout.write(f"Created feed {feed.pk} ({feed.adapter}) for {carrier.code}.")
        else:
            self.stdout.write(f"Feed {feed.pk} ({feed.adapter}) for {carrier.code} exists.")

        # A carrier-bound key for the webhook: one live demo key (the previous one is revoked,
        # since a raw key is shown only once).
        for old in ApiKey.objects.filter(name=KEY_NAME, revoked_at__isnull=True):
            tenancy_services.api_key_revoke(api_key=old)
        _key, raw_key = tenancy_services.api_key_create(
            actor=owner, name=KEY_NAME, scopes=[Scope.TRACKING_WRITE], carrier=carrier
        )
        carrier_actor = actor_for_api_key(raw_key)

        now = timezone.now()
        shipments = self._manifest(owner, feed, now, zone)
        # Event times hang on the manifest's import time, so a second run sends the very same
        # events (same ids): all duplicates.
        anchor = min(s.created_at for s in shipments).replace(microsecond=0)
        self._statuses(carrier_actor, feed, shipments, anchor)
        self._curl(feed, raw_key, shipments[-1].barcode, now, zone)

    def _manifest(self, actor, feed, now, zone) -> list[Shipment]:
        text = render_manifest(SAMPLE.read_text(), now=now, zone=zone)
        day = now.astimezone(zone).strftime("%Y%m%d")
        path = Path(settings.BASE_DIR) / "var" / "carrier_feeds" / f"andes3pl-manifest-{day}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        references = re.findall(r"^(AND-\d{8}-\d{2}),", text, flags=re.MULTILINE)
        existing = Shipment.objects.filter(reference__in=references)
        if existing.count() == len(references):
            self.stdout.write(f"Manifest of {day} already imported ({len(references)} shipments).")
        else:
            path.write_text(text)
            record = feed_import_file(
                actor=actor,
                feed=feed,
                kind=ImportKind.MANIFEST,
                name=path.name,
                content=path.read_bytes(),
                dry_run=False,
            )
            self.stdout.write(
                f"Imported {path} (import {record.pk}): {record.summary['created']} shipments."
            )
        return list(Shipment.objects.filter(reference__in=references).order_by("reference"))

    def _statuses(self, actor, feed, shipments, now) -> None:
        hour = dt.timedelta(hours=1)
        updates = []
        for n, shipment in enumerate(shipments):
            out = now - 4 * hour + n * dt.timedelta(minutes=2)
            updates.append(
                aftership_update(
                    shipment.barcode,
                    "OutForDelivery",
                    "OutForDelivery_001",
                    "Out for delivery",
                    out,
                )
            )
        failures = {
            14: ("AttemptFail", "AttemptFail_002", "Addressee not available"),
            15: ("Exception", "Exception_003", "Customer refused delivery"),
            16: ("Exception", "Exception_007", "Incorrect address"),
        }
        for n, shipment in enumerate(shipments[:18]):
            at = now - 3 * hour + n * dt.timedelta(minutes=9)
            if n in failures:
                tag, subtag, message = failures[n]
            elif n == 17:
                # A code this feed's mapping does not know: kept, flagged, not applied.
                tag, subtag, message = "Delayed", "Delayed_042", "Held for weather at depot"
            else:
                tag, subtag, message = "Delivered", "Delivered_001", "Delivered"
            updates.append(aftership_update(shipment.barcode, tag, subtag, message, at))
        # The carrier re-sends its first delivery (a retry), then a late "out for delivery"
        # for a parcel already delivered (its system flushed a buffer).
        updates.append(updates[len(shipments)])
        updates.append(
            aftership_update(
                shipments[1].barcode,
                "OutForDelivery",
                "OutForDelivery_003",
                "Customer contacted",
                now - 3 * hour - 10 * dt.timedelta(minutes=1),
            )
        )
        counts: dict[str, int] = {}
        fresh: set[str] = set()  # event keys stored by this run: a repeat of one is the retry
        for body in updates:
            outcome = services.events_receive(actor=actor, feed=feed, payload=body)[0].as_dict()
            label = "duplicate" if outcome["duplicate"] else outcome["result"]
            counts[label] = counts.get(label, 0) + 1
            retry = outcome["duplicate"] and outcome["event_key"] in fresh
            if not outcome["duplicate"]:
                fresh.add(outcome["event_key"])
            routine = outcome["result"] == "applied" and outcome["reason_code"] is None
            if not retry and (outcome["duplicate"] or (routine and not outcome["flagged"])):
                continue
            shipment = outcome["shipment"]
            mapped = (
                f" -> {outcome['scan_type']}/{outcome['reason_code']}"
                if outcome["reason_code"] and not outcome["flagged"]
                else ""
            )
            self.stdout.write(
                f"  {outcome['barcode']} {outcome['carrier_status_code']}{mapped}: {label}"
                + (" (flagged)" if outcome["flagged"] else "")
                + (f", shipment {shipment['status']}" if shipment else "")
                + (f": {outcome['detail']}" if outcome["detail"] else "")
            )
        self.stdout.write(f"Posted {len(updates)} AfterShip updates: {json.dumps(counts)}")
        self.stdout.write(
            "Flagged events: GET /api/v1/carrier-feed-events/?flagged=true (map them in the "
            f"feed's config, then POST /api/v1/carrier-feeds/{feed.pk}/reprocess/)."
        )

    def _curl(self, feed, raw_key, barcode, now, zone) -> None:
        body = aftership_update(barcode, "Delivered", "Delivered_001", "Delivered", now)
        body["msg"]["checkpoints"][0]["checkpoint_time"] = now.astimezone(zone).isoformat(
            timespec="seconds"
        )
        self.stdout.write("\nPost a status update as the carrier (key bound to andes3pl):")
        self.stdout.write(
            f"curl -X POST http://localhost:8000/api/v1/carrier-feeds/{feed.pk}/events/ \\\n"
            f"  -H 'Authorization: Api-Key {raw_key}' -H 'Content-Type: application/json' \\\n"
            f"  -d '{json.dumps(body)}'"
        )
