"""Live input of the tracking-page sockets: one listener per process and organization.

The event catalog's live handlers of the console (portal/events.py, portal/live.py) already
turn every committed `shipment.status_changed`, `stop.status_changed`, `stop.eta_changed`,
`route.changed` and `vehicle.moved` (batched: `vehicles.moved`) into a delta on the
organization's group (control_tower/realtime.py). Tracking pages reuse those deltas instead
of publishing their own: no extra Redis work per ping, whatever the number of open pages. Each
process subscribes once per organization that has an open tracking socket, parses each delta
once, and hands it to the sockets that watch its shipment, stop, route or vehicle.

The deltas are server-side input only: a tracking socket never forwards them. It re-reads its
own view model (`selectors.tracking_state`) or, for a position, sends the vehicle's place only
when its recipient may see it (portal/tracking_page/consumers.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref

from control_tower.realtime import live_join, live_leave, organization_group

logger = logging.getLogger(__name__)

# Delta type → which watch key of a socket its data names.
STOP_TYPES = ("stop.status", "stop.eta")
ROUTE_TYPES = ("route.status", "route.changed")


class Watcher:
    """What one socket listens for (its keys change when its stop moves to another route)."""

    shipment_id: int
    stop_id: int | None
    route_id: int | None
    vehicle_id: int | None

    def on_change(self) -> None:  # something about this shipment may have changed
        raise NotImplementedError

    def on_vehicle(self, data: dict) -> None:  # the route's vehicle reported
        raise NotImplementedError


class OrganizationListener:
    def __init__(self, organization_id: int) -> None:
        self.organization_id = organization_id
        self.watchers: set[Watcher] = set()
        self.joined = False
        self.lock = asyncio.Lock()

    async def add(self, watcher: Watcher) -> None:
        async with self.lock:
            self.watchers.add(watcher)
            if not self.joined:
                await live_join(organization_group(self.organization_id), self.deliver)
                self.joined = True

    async def remove(self, watcher: Watcher) -> None:
        async with self.lock:
            self.watchers.discard(watcher)
            if not self.watchers and self.joined:
                self.joined = False
                await live_leave(organization_group(self.organization_id), self.deliver)

    def deliver(self, raw: str) -> None:
        """Called by the process's subscription for every delta of the organization."""
        if not self.watchers:
            return
        try:
            message = json.loads(raw)
            kind, data = message["type"], message["data"]
        except (ValueError, KeyError, TypeError):
            return
        if kind == "vehicles.moved":  # a batch: one item per vehicle that moved in the tick
            for item in data.get("items", ()):
                self._vehicle(item)
            return
        if kind == "vehicle.moved":
            self._vehicle(data)
            return
        if kind in STOP_TYPES:
            matches = _by_keys(self.watchers, stop_id=data.get("id"), route_id=data.get("route"))
        elif kind in ROUTE_TYPES:
            matches = _by_keys(self.watchers, route_id=data.get("id"))
        elif kind == "shipment.status":
            matches = [w for w in self.watchers if w.shipment_id == data.get("id")]
        else:
            return
        for watcher in matches:
            watcher.on_change()

    def _vehicle(self, data: dict) -> None:
        route, vehicle = data.get("route"), data.get("id")
        for watcher in list(self.watchers):
            if (route is not None and route == watcher.route_id) or (
                vehicle is not None and vehicle == watcher.vehicle_id
            ):
                watcher.on_vehicle(data)


def _by_keys(watchers, *, stop_id=None, route_id=None) -> list:
    found = []
    for watcher in list(watchers):
        if (stop_id is not None and stop_id == watcher.stop_id) or (
            route_id is not None and route_id == watcher.route_id
        ):
            found.append(watcher)
    return found


_listeners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _for_loop() -> dict:
    loop = asyncio.get_running_loop()
    listeners = _listeners.get(loop)
    if listeners is None:
        listeners = _listeners[loop] = {}
    return listeners


async def watch(organization_id: int, watcher: Watcher) -> None:
    listeners = _for_loop()
    listener = listeners.get(organization_id)
    if listener is None:
        listener = listeners[organization_id] = OrganizationListener(organization_id)
    await listener.add(watcher)


async def unwatch(organization_id: int, watcher: Watcher) -> None:
    listener = _for_loop().get(organization_id)
    if listener is not None:
        await listener.remove(watcher)
