"""The tracking page's websocket `/ws/v1/track/<token>/`: one shipment, for whoever holds its
link.

The token authenticates the socket (no session, no organization membership): an unknown,
expired or revoked token is accepted and closed at once with 4404, the same for all, so the
page stops retrying. Messages (version 1):

- `{"v": 1, "type": "state", "data": <view model>}`: the page's whole view model
  (portal/tracking_page/selectors.py), sent on connect and whenever it changes. Re-read after
  any delta about this shipment, its stop, its route (debounced), and every
  TRACKING_SOCKET_REFRESH_S ±20 % (the link is re-checked then too: revoked → 4404).
- `{"v": 1, "type": "vehicle", "data": {"lat", "lon", "fix_time"}}`: the driver moved; sent
  ONLY while the view model says the driver may be shown (`live`: next stop, or due within
  the organization's `tracking_live_minutes`). Before that the socket sends no position at all.

A socket never receives another shipment's data: its input is filtered to its own shipment,
stop, route and vehicle (portal/tracking_page/live.py), and what it sends is built from its
own view model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from channels.db import database_sync_to_async
from django.conf import settings

from control_tower.tenancy.scope import organization_scope
from control_tower.web import supported
from control_tower.ws_guard import JsonObjectFramesConsumer
from portal.tracking_page import privacy
from portal.tracking_page.live import Watcher, unwatch, watch
from portal.tracking_page.selectors import state_fingerprint, tracking_read
from tracking.services.tracking_links import link_resolve, link_view_limited

logger = logging.getLogger(__name__)

CLOSE_GONE = 4404  # unknown, expired or revoked: the same for all
CLOSE_TOO_MANY = 4429
DEBOUNCE_S = 0.25
VERSION = 1


@database_sync_to_async
def _resolve(token: str):
    return link_resolve(token)


@database_sync_to_async
def _limited(token: str, client: str) -> bool:
    return link_view_limited(token, client_ip=client)


@database_sync_to_async
def _read(token: str, language: str | None):
    """(state, keys) for a still-usable link, or None."""
    link = link_resolve(token)
    if link is None:
        return None
    organization = link.organization
    language = language or supported(link.language) or organization.default_language
    with organization_scope(organization):
        state, stop = tracking_read(
            shipment=link.shipment, organization=organization, language=language
        )
    keys = {
        "organization_id": organization.pk,
        "shipment_id": link.shipment_id,
        "stop_id": stop.pk if stop is not None else None,
        "route_id": stop.route_id if stop is not None else None,
        "vehicle_id": stop.route.vehicle_id if stop is not None else None,
    }
    return state, keys, language


class TrackingConsumer(JsonObjectFramesConsumer, Watcher):
    async def connect(self):
        self.token = self.scope["url_route"]["kwargs"]["token"]
        self.organization_id = None
        self.refresher: asyncio.Task | None = None
        self.ticker: asyncio.Task | None = None
        self.pending = False
        self.fingerprint = None
        self.live = False
        self.shipment_id = self.stop_id = self.route_id = self.vehicle_id = None
        self.language = _query_language(self.scope)
        self.closed = False
        await self.accept()
        client = (self.scope.get("client") or ("", 0))[0] or ""
        if await _limited(self.token, client):
            await self.close(code=CLOSE_TOO_MANY)
            return
        read = await _read(self.token, self.language)
        if read is None:
            await self.close(code=CLOSE_GONE)
            return
        state, keys, self.language = read
        self._keep(keys)
        self.organization_id = keys["organization_id"]
        await watch(self.organization_id, self)
        await self._send_state(state)
        self.ticker = asyncio.get_running_loop().create_task(self._tick())

    def _keep(self, keys: dict) -> None:
        self.shipment_id = keys["shipment_id"]
        self.stop_id = keys["stop_id"]
        self.route_id = keys["route_id"]
        self.vehicle_id = keys["vehicle_id"]

    async def _send_state(self, state: dict) -> None:
        if self.closed:
            return
        self.live = bool(state.get("live"))
        fingerprint = state_fingerprint(state)
        if fingerprint == self.fingerprint:
            return
        self.fingerprint = fingerprint
        await self.send_json({"v": VERSION, "type": "state", "data": state})

    async def disconnect(self, code):
        self.closed = True
        if self.organization_id is not None:
            await unwatch(self.organization_id, self)
            self.organization_id = None
        for task in (self.refresher, self.ticker):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"v": VERSION, "type": "pong"})

    # --- input from the organization's deltas (portal/tracking_page/live.py) ---------------

    def on_change(self) -> None:
        if self.pending:
            return
        self.pending = True
        self.refresher = asyncio.get_running_loop().create_task(self._refresh_soon())

    def on_vehicle(self, data: dict) -> None:
        if not self.live or self.closed:
            return  # before "next": no position leaves the server
        lat, lon = data.get("lat"), data.get("lon")
        if lat is None or lon is None:
            return
        message = {**privacy.exact(lat, lon), "fix_time": data.get("fix_time")}
        asyncio.get_running_loop().create_task(self._send_vehicle(message))

    async def _send_vehicle(self, message: dict) -> None:
        if not self.closed:  # it may have closed since the position came in
            await self.send_json({"v": VERSION, "type": "vehicle", "data": message})

    async def _refresh_soon(self) -> None:
        await asyncio.sleep(DEBOUNCE_S)  # a recompute emits one delta per stop: read once
        self.pending = False
        await self._refresh()

    async def _refresh(self) -> None:
        try:
            read = await _read(self.token, self.language)
        except Exception:  # noqa: BLE001 - a database hiccup: try again at the next tick
            logger.warning("tracking state refresh failed", exc_info=True)
            return
        if self.closed:
            return
        if read is None:
            self.closed = True
            await self.close(code=CLOSE_GONE)
            return
        state, keys, _language = read
        self._keep(keys)
        await self._send_state(state)

    async def _tick(self) -> None:
        while True:
            # Jittered, so sockets opened together do not re-read together.
            jitter = random.uniform(0.8, 1.2)  # noqa: S311 - timing, not a secret
            await asyncio.sleep(settings.TRACKING_SOCKET_REFRESH_S * jitter)
            await self._refresh()


def _query_language(scope) -> str | None:
    from urllib.parse import parse_qs

    query = parse_qs((scope.get("query_string") or b"").decode())
    return supported((query.get("lang") or [""])[0])
