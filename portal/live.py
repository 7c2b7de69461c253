"""`vehicle.moved` on the console: the catalog event as an item of the socket's
`vehicles.moved` message (keyed by vehicle, coalesced per vehicle, batched per organization and
tick: control_tower/realtime.py).

Which vehicle and route a fix moves is decided by the ingest (tracking/ingest/vehicles.py);
this module only shapes and sends the message. Registered by PortalConfig.ready().
"""

from __future__ import annotations

from control_tower.events import Event, register_live, register_live_async
from control_tower.events.catalog import VEHICLE_MOVED
from control_tower.numbers import finite_or_none
from control_tower.realtime import publish_coalesced_batched, publish_coalesced_sync_now

# The socket message: {"items": [vehicle_moved_data(...), ...]} (docs/REALTIME.md).
VEHICLES_MOVED = "vehicles.moved"


def vehicle_moved_data(payload: dict) -> dict:
    """One item of the message (docs/REALTIME.md) from the catalog payload."""
    speed = payload.get("speed_mps")
    return {
        "id": payload["id"],
        "lat": payload["lat"],
        "lon": payload["lon"],
        "heading": payload.get("heading_deg"),
        "speed_kmh": finite_or_none(None if speed is None else speed * 3.6, digits=1),
        "battery": payload.get("battery_pct"),
        "fix_time": payload["fix_time"],
        "route": payload.get("route"),
    }


def vehicle_moved_live(event: Event) -> None:
    """Sync ingest (Django views, GPX imports): runs after the fix's commit (a batch of one)."""
    publish_coalesced_sync_now(
        organization_id=event.organization_id,
        carrier_id=event.carrier_id,
        batch_type=VEHICLES_MOVED,
        key=event.payload["id"],
        data=vehicle_moved_data(event.payload),
    )


async def vehicle_moved_live_async(event: Event) -> None:
    """The ASGI fast path: awaited on the event loop after the (autocommitted) write; joins the
    loop's batch of this tick and returns at once (the device's answer does not wait for it)."""
    publish_coalesced_batched(
        organization_id=event.organization_id,
        carrier_id=event.carrier_id,
        batch_type=VEHICLES_MOVED,
        key=event.payload["id"],
        data=vehicle_moved_data(event.payload),
    )


def register() -> None:
    register_live(VEHICLE_MOVED.name, vehicle_moved_live)
    register_live_async(VEHICLE_MOVED.name, vehicle_moved_live_async)
