"""What recipients do through their tracking link, on the console's socket.

The customer actions (tracking/services/customer_actions.py) emit catalog events; this module
turns the four of them into console messages, after commit, the way portal/events.py does for
stops and routes: same organization group, same carrier group (the event's `carrier_id`), so a
carrier user hears only their carrier's recipients and another organization hears nothing.

Each catalog event becomes a socket message of the same name (docs/REALTIME.md has the data):
- `stop.recipient_away`: `id` (stop), `route`, `sequence`, `shipment`, `reference`, `at`;
- `shipment.customer_updated`: `id` (shipment), `reference`, `fields`, `at`;
- `shipment.rescheduled`: `id`, `reference`, `window_start`, `window_end`, `route` and `stop`
  (what it was taken off), `at`;
- `shipment.rated`: `id` (shipment), `reference`, `stars`, `at`.

Why the messages carry no text the recipient typed (instructions, comments): the catalog's
payloads leave it out on purpose (docs/TRACKING_LINKS.md), and the socket follows them. The
console reads the words from the access-controlled stop details when it shows them. Registered
by `portal.events.register()`.
"""

from __future__ import annotations

from control_tower.events import Event, register_live
from control_tower.events.catalog import (
    SHIPMENT_CUSTOMER_UPDATED,
    SHIPMENT_RATED,
    SHIPMENT_RESCHEDULED,
    STOP_RECIPIENT_AWAY,
)
from control_tower.realtime import publish_sync_now
from control_tower.times import iso


def _send(event: Event, data: dict) -> None:
    publish_sync_now(
        organization_id=event.organization_id,
        carrier_id=event.carrier_id,
        event=event.type,
        data=data,
    )


def recipient_away_live(event: Event) -> None:
    p = event.payload
    _send(
        event,
        {
            "id": p["id"],
            "route": p["route"],
            "sequence": p["sequence"],
            "shipment": p["shipment"],
            "reference": p["reference"],
            "at": p["at"],
        },
    )


def customer_updated_live(event: Event) -> None:
    p = event.payload
    _send(
        event,
        {"id": p["id"], "reference": p["reference"], "fields": p["fields"], "at": p["at"]},
    )


def rescheduled_live(event: Event) -> None:
    p = event.payload
    _send(
        event,
        {
            "id": p["id"],
            "reference": p["reference"],
            "window_start": p["window_start"],
            "window_end": p["window_end"],
            "route": p["taken_off_route"],
            "stop": p["taken_off_stop"],
            "at": p["at"],
        },
    )


def rated_live(event: Event) -> None:
    p = event.payload
    _send(
        event,
        {
            "id": p["shipment"],
            "reference": p["reference"],
            "stars": p["stars"],
            "at": iso(event.occurred_at),
        },
    )


def register() -> None:
    register_live(STOP_RECIPIENT_AWAY.name, recipient_away_live)
    register_live(SHIPMENT_CUSTOMER_UPDATED.name, customer_updated_live)
    register_live(SHIPMENT_RESCHEDULED.name, rescheduled_live)
    register_live(SHIPMENT_RATED.name, rated_live)
