"""Websocket consumers: authenticate, join organization-scoped groups, forward.

The protocol (message types, `seq`, gaps and re-sync, close codes) is in docs/REALTIME.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model

from control_tower.errors import DomainError
from control_tower.realtime import (
    flusher_acquire,
    flusher_release,
    group_seq_async,
    live_join,
    live_leave,
    user_group,
)
from control_tower.tenancy.actors import Actor, actor_for_user
from control_tower.tenancy.roles import READ, Resource
from control_tower.ws_guard import JsonObjectFramesConsumer
from portal.selectors import events_group_of

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 1013  # "try again later": the client reconnects and re-syncs
OUTBOX_LIMIT = 20_000  # deltas waiting for a slow socket before it is dropped


def may_watch(actor: Actor | None) -> bool:
    # The console grant of the one table: drivers and devices have none.
    return actor is not None and actor.can(Resource.CONSOLE, READ)


@database_sync_to_async
def _still_allowed(actor: Actor) -> bool:
    """Re-read the person's membership: same organization, same carrier, still allowed."""
    user = actor.user
    if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
        return False
    try:
        fresh = actor_for_user(user, organization_slug=actor.organization.slug)
    except DomainError:
        return False
    return (
        may_watch(fresh)
        and fresh.organization.pk == actor.organization.pk
        and fresh.carrier_id == actor.carrier_id
    )


class OrganizationEventsConsumer(JsonObjectFramesConsumer):
    """Live events of the caller's organization. Carrier users join only their carrier's group,
    so they never receive other carriers' events. Memberships are re-checked every
    CONSOLE_MEMBERSHIP_RECHECK_S and at once when the membership service says it changed; a
    person no longer allowed is disconnected with 4403."""

    async def connect(self):
        self.joined: list[str] = []
        self.events_group: str | None = None
        self.recheck: asyncio.Task | None = None
        self.sender: asyncio.Task | None = None
        self.flushing = False
        actor = self.scope.get("actor")
        if actor is None:
            user = self.scope.get("user")
            signed_in = user is not None and user.is_authenticated
            # Signed in but not a member of the organization asked for: forbidden.
            await self.close(code=CLOSE_FORBIDDEN if signed_in else CLOSE_UNAUTHENTICATED)
            return
        if not may_watch(actor):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.actor = actor
        organization_id = actor.organization.pk
        # Control messages (membership changes) come through the channel layer.
        if actor.user is not None:
            self.joined.append(user_group(organization_id, actor.user.pk))
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        # A carrier user joins only its carrier's group (the same rule as the snapshot's seq).
        self.events_group = events_group_of(actor)
        self.outbox: asyncio.Queue[str] = asyncio.Queue()  # drained once hello is sent
        await live_join(self.events_group, self._deliver)
        flusher_acquire()
        self.flushing = True
        # Read after subscribing: every delta numbered later than this reaches this socket.
        seq = await group_seq_async(self.events_group)
        hello = {"organization": actor.organization.slug, "seq": seq}
        await self.send_json({"v": 1, "type": "hello", "data": hello})
        self.sender = asyncio.get_running_loop().create_task(self._send_outbox())
        self.recheck = asyncio.get_running_loop().create_task(self._recheck_periodically())

    def _deliver(self, text: str) -> None:
        # Called by the process's subscription for each delta: never blocks.
        if self.outbox.qsize() >= OUTBOX_LIMIT:
            logger.warning("dropping a socket %s deltas behind", self.outbox.qsize())
            self.outbox = asyncio.Queue()
            asyncio.get_running_loop().create_task(self.close(code=CLOSE_TOO_SLOW))
            return
        self.outbox.put_nowait(text)

    async def _send_outbox(self):
        while True:
            text = await self.outbox.get()
            await self.send(text_data=text)

    async def disconnect(self, code):
        if self.events_group is not None:
            await live_leave(self.events_group, self._deliver)
            self.events_group = None
        for task in (self.recheck, self.sender):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []
        if self.flushing:
            self.flushing = False
            await flusher_release()

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"v": 1, "type": "pong"})

    async def control_message(self, message):
        """Membership changed or revoked: re-check now rather than at the next tick."""
        await self._close_unless_allowed()

    async def _recheck_periodically(self):
        interval = settings.CONSOLE_MEMBERSHIP_RECHECK_S
        while True:
            await asyncio.sleep(interval)
            if await self._close_unless_allowed():
                return

    async def _close_unless_allowed(self) -> bool:
        try:
            allowed = await _still_allowed(self.actor)
        except Exception:  # noqa: BLE001 - a database hiccup is not a revocation
            logger.warning("membership re-check failed", exc_info=True)
            return False
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN)
        return not allowed
