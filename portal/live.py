"""`vehicle.moved` on the console: the catalog event as the socket's message (keyed by
vehicle, coalesced per vehicle: control_tower/realtime.py).

Which vehicle and route a fix moves is decided by the ingest (tracking/ingest/vehicles.py);
this module only shapes and sends the message. Registered by PortalConfig.ready().
"""

from __future__ import annotations

from control_tower.events import Event, register_live, register_live_async
from control_tower.events.catalog import VEHICLE_MOVED
from control_tower.numbers import finite_or_none
from control_tower.realtime import publish_coalesced_now, publish_coalesced_sync_now


def vehicle_moved_data(payload: dict) -> dict:
    """The message body (docs/REALTIME.md) from the catalog payload."""
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
    """Sync ingest (Django views, GPX imports): runs after the fix's commit."""
    publish_coalesced_sync_now(
        organization_id=event.organization_id,
        carrier_id=event.carrier_id,
        event=VEHICLE_MOVED.name,
        key=event.payload["id"],
        data=vehicle_moved_data(event.payload),
    )


async def vehicle_moved_live_async(event: Event) -> None:
    """The ASGI fast path: awaited on the event loop after the (autocommitted) write."""
    await publish_coalesced_now(
        organization_id=event.organization_id,
        carrier_id=event.carrier_id,
        event=VEHICLE_MOVED.name,
        key=event.payload["id"],
        data=vehicle_moved_data(event.payload),
    )


def register() -> None:
    register_live(VEHICLE_MOVED.name, vehicle_moved_live)
    register_live_async(VEHICLE_MOVED.name, vehicle_moved_live_async)
