"""Publishing live events to websocket clients, after commit, on organization-scoped groups.

Services do not call this module: they emit catalog events (control_tower/events/), and the
console's live handlers (portal/events.py, portal/live.py) turn them into these messages.

Every message sent to a group carries that group's sequence number (`seq`, a Redis INCR at
publish), so a client can tell a gap from silence and re-sync (docs/REALTIME.md). Positions
are coalesced per key (per vehicle): the first of a burst goes out at once, the rest are parked
in Redis (only the newest kept) and a flusher sends the newest one when the key's window ends.
Any process with a connected websocket runs a flusher; a Lua script makes each parked message
go out exactly once whichever process claims it. Positions are also batched: those offered on
one event loop within a tick travel as one message per organization (and carrier) group.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from contextlib import contextmanager

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

from control_tower.redis_clients import async_redis, sync_redis

logger = logging.getLogger(__name__)

EVENT_VERSION = 1


def organization_group(organization_id: int) -> str:
    return f"org.{organization_id}"


def carrier_group(organization_id: int, carrier_id: int) -> str:
    return f"org.{organization_id}.carrier.{carrier_id}"


def user_group(organization_id: int, user_id: int) -> str:
    """One person's sockets in one organization (membership changes are sent here)."""
    return f"org.{organization_id}.user.{user_id}"


def _key(*parts) -> str:
    return ":".join([settings.CONSOLE_KEY_PREFIX, *map(str, parts)])


def seq_key(group: str) -> str:
    # Group names start with "org.<id>", so every key carries the organization.
    return _key("seq", group)


def _groups(organization_id: int, carrier_id: int | None) -> list[str]:
    groups = [organization_group(organization_id)]
    if carrier_id is not None:
        groups.append(carrier_group(organization_id, carrier_id))
    return groups


def live_channel(group: str) -> str:
    """The Redis Pub/Sub channel of a group's deltas (carries the organization too)."""
    return _key("live", group)


def _encode(event: str, data: dict, seq: int) -> str:
    return json.dumps(
        {"v": EVENT_VERSION, "type": event, "seq": seq, "data": data}, separators=(",", ":")
    )


def group_seq(group: str) -> int:
    """The last sequence number sent to `group` (0 when nothing was ever sent)."""
    value = sync_redis().get(seq_key(group))
    return int(value or 0)


async def group_seq_async(group: str) -> int:
    value = await async_redis().get(seq_key(group))
    return int(value or 0)


# ---------------------------------------------------------------------------------------------
# Publishing
# ---------------------------------------------------------------------------------------------


# Number and publish in one round trip: per group, INCR its seq and PUBLISH the message with
# it. ARGV: the serialized message split around its seq value, then one channel per key.
_NUMBER_AND_PUBLISH = """
local out = {}
for i, seq_key in ipairs(KEYS) do
  local seq = redis.call('INCR', seq_key)
  redis.call('PUBLISH', ARGV[i + 2], ARGV[1] .. seq .. ARGV[2])
  table.insert(out, seq)
end
return out
"""


def _publish_args(organization_id, event, data, carrier_id):
    groups = _groups(organization_id, carrier_id)
    # Serialized once; "seq" comes before "data", so the first match is the seq field.
    head, tail = _encode(event, data, 0).split('"seq":0', 1)
    keys = [seq_key(group) for group in groups]
    args = [head + '"seq":', tail, *(live_channel(group) for group in groups)]
    return groups, keys, args


async def _publish_async(organization_id, event, data, carrier_id) -> None:
    groups, keys, args = _publish_args(organization_id, event, data, carrier_id)
    try:
        await async_redis().eval(_NUMBER_AND_PUBLISH, len(keys), *keys, *args)
    except Exception:  # noqa: BLE001
        logger.warning("could not publish %s to %s", event, groups, exc_info=True)


def publish_sync_now(
    *, organization_id: int, event: str, data: dict, carrier_id: int | None = None
) -> None:
    """Send right away from sync code that runs after its commit (on_commit callbacks).
    Inside `publishing_together()` the send waits for the block's end, where every send of
    the block goes in one round trip. Failures are logged, never raised."""
    groups, keys, args = _publish_args(organization_id, event, data, carrier_id)
    pending = getattr(_together, "calls", None)
    if pending is not None:
        pending.append((event, groups, keys, args))
        return
    try:
        sync_redis().eval(_NUMBER_AND_PUBLISH, len(keys), *keys, *args)
    except Exception:  # noqa: BLE001
        logger.warning("could not publish %s to %s", event, groups, exc_info=True)


_together = threading.local()


@contextmanager
def publishing_together():
    """Collect this thread's `publish_sync_now` calls and send them at the end in one Redis
    pipeline, in order (each keeps its own numbering script, so seq and gaps are unchanged).
    An ETA burst that moved 2,000 stops paid one round trip (~1.2 ms) per message. Nested
    blocks join the outer one."""
    if getattr(_together, "calls", None) is not None:
        yield
        return
    _together.calls = []
    try:
        yield
    finally:
        calls, _together.calls = _together.calls, None
        if calls:
            try:
                pipe = sync_redis().pipeline(transaction=False)
                for _event, _groups, keys, args in calls:
                    pipe.eval(_NUMBER_AND_PUBLISH, len(keys), *keys, *args)
                pipe.execute()
            except Exception:  # noqa: BLE001
                logger.warning("could not publish %s live messages", len(calls), exc_info=True)


async def publish_now(
    *, organization_id: int, event: str, data: dict, carrier_id: int | None = None
) -> None:
    """The async twin of `publish_sync_now`, for code that runs on the event loop after its
    own write has committed (the ingest fast path). Failures are logged, never raised."""
    await _publish_async(organization_id, event, data, carrier_id)


def notify_user_on_commit(*, organization_id: int, user_id: int, event: str, data: dict) -> None:
    """A control message to one person's open sockets (not numbered: it is not a delta)."""

    def send() -> None:
        group = user_group(organization_id, user_id)
        message = {"type": "control.message", "event": event, "data": data}
        try:
            async_to_sync(get_channel_layer().group_send)(group, message)
        except Exception:  # noqa: BLE001
            logger.warning("could not notify %s of %s", group, event, exc_info=True)

    transaction.on_commit(send)


# ---------------------------------------------------------------------------------------------
# Coalescing (per key, e.g. per vehicle) and batching (per organization and tick)
# ---------------------------------------------------------------------------------------------
#
# Positions are not sent one message each: every item offered on one event loop during one tick
# (CONSOLE_BATCH_TICK_S) for one organization goes out as one batch message,
# `{"v": 1, "type": <batch type>, "seq": n, "data": {"items": [...]}}`, numbered once per group:
# the organization's group carries every item, each carrier's group only that carrier's items.
# One Lua call decides each item's leading edge, parks the others, and numbers and publishes
# the batches (2,000 vehicles every 5 s with 20 dispatchers: 8,000 websocket frames/s became
# ~800, docs/PERFORMANCE.md).

# KEYS: latest (hash), due (zset), one seq key per group (the organization's first), then one
# gate per item. ARGV: window ms (0: no gating, the items were claimed from the parked ones),
# group count G, item count N, the message's head, middle and tail around seq and items, G
# channels, then per item: member, parked payload, item JSON, group index (1: none but the
# organization's). Returns how many items were sent now.
_OFFER_AND_PUBLISH = """
local window = tonumber(ARGV[1])
local groups, count = tonumber(ARGV[2]), tonumber(ARGV[3])
local head, middle, tail = ARGV[4], ARGV[5], ARGV[6]
local lists = {}
for g = 1, groups do lists[g] = {} end
local now_ms = nil
local sent = 0
for i = 1, count do
  local a = 6 + groups + (i - 1) * 4
  local gate = KEYS[2 + groups + i]
  local leading = window == 0 or redis.call('SET', gate, '1', 'NX', 'PX', window)
  if leading then
    table.insert(lists[1], ARGV[a + 3])
    local g = tonumber(ARGV[a + 4])
    if g > 1 then table.insert(lists[g], ARGV[a + 3]) end
    sent = sent + 1
  else
    redis.call('HSET', KEYS[1], ARGV[a + 1], ARGV[a + 2])
    local ttl = redis.call('PTTL', gate)
    if ttl < 0 then ttl = 0 end
    if not now_ms then
      local now = redis.call('TIME')
      now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
    end
    redis.call('ZADD', KEYS[2], 'NX', now_ms + ttl, ARGV[a + 1])
  end
end
for g = 1, groups do
  if #lists[g] > 0 then
    local seq = redis.call('INCR', KEYS[2 + g])
    redis.call('PUBLISH', ARGV[6 + g], head .. seq .. middle .. table.concat(lists[g], ',') .. tail)
  end
end
return sent
"""

# KEYS: due (zset), latest (hash). ARGV: gate key prefix, window ms, batch size.
# Claims due members atomically (so several flushers never send one twice), closes their gate
# again for a window, and returns their newest payloads.
_CLAIM = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, ARGV[3])
local out = {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local payload = redis.call('HGET', KEYS[2], member)
  if payload then
    redis.call('HDEL', KEYS[2], member)
    redis.call('SET', ARGV[1] .. member, '1', 'PX', ARGV[2])
    table.insert(out, payload)
  end
end
return out
"""

BATCH_LIMIT = 500  # items per Lua call and per message (a burst after a pause is split)


def _window_ms() -> int:
    return int(settings.CONSOLE_COALESCE_WINDOW_S * 1000)


def _compact(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"))


def _batch_calls(organization_id: int, batch_type: str, items: list, *, gated: bool):
    """(keys, args) of one `_OFFER_AND_PUBLISH` call per BATCH_LIMIT items. `items`:
    (key, carrier id or None, data) in the order they happened."""
    window = _window_ms() if gated else 0
    head = f'{{"v":{EVENT_VERSION},"type":{json.dumps(batch_type)},"seq":'
    for start in range(0, len(items), BATCH_LIMIT):
        chunk = items[start : start + BATCH_LIMIT]
        carriers = sorted({carrier for _key, carrier, _data in chunk if carrier is not None})
        groups = _groups(organization_id, None) + [
            carrier_group(organization_id, carrier) for carrier in carriers
        ]
        index = {carrier: i + 2 for i, carrier in enumerate(carriers)}
        keys = [_key("latest"), _key("due"), *(seq_key(group) for group in groups)]
        args: list = [window, len(groups), len(chunk), head, ',"data":{"items":[', "]}}"]
        args += [live_channel(group) for group in groups]
        for key, carrier, data in chunk:
            # The member carries the organization: two tenants' vehicles never share a window.
            member = f"{organization_id}:{batch_type}:{key}"
            keys.append(_key("gate", member))
            parked = {"o": organization_id, "c": carrier, "t": batch_type, "d": data}
            args += [
                member,
                _compact(parked) if gated else "",
                _compact(data),
                index.get(carrier, 1),
            ]
        yield keys, args


async def _offer_async(organization_id, batch_type, items, *, gated=True) -> int:
    sent = 0
    for keys, args in _batch_calls(organization_id, batch_type, items, gated=gated):
        try:
            sent += await async_redis().eval(_OFFER_AND_PUBLISH, len(keys), *keys, *args)
        except Exception:  # noqa: BLE001
            logger.warning(
                "could not publish %s to org %s", batch_type, organization_id, exc_info=True
            )
    return sent


class _Batcher:
    """One per event loop: collects the items offered during a tick, per organization and batch
    type, then offers each collection in one call. A tick starts when its first item arrives
    after a quiet tick (so a lone position goes out at once); under load one call per tick."""

    def __init__(self) -> None:
        self.pending: dict[tuple[int, str], list] = {}
        self.task: asyncio.Task | None = None
        self.last = -1e9

    def add(self, organization_id: int, batch_type: str, item: tuple) -> None:
        self.pending.setdefault((organization_id, batch_type), []).append(item)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                # sleep(0) even when due: the offers of this loop iteration join the batch.
                await asyncio.sleep(
                    max(0.0, self.last + settings.CONSOLE_BATCH_TICK_S - loop.time())
                )
                batch, self.pending = self.pending, {}
                self.last = loop.time()
                for (organization_id, batch_type), items in batch.items():
                    await _offer_async(organization_id, batch_type, items)
        finally:
            self.task = None  # no await since the loop's last check: add() starts a new one


_batchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def publish_coalesced_batched(
    *, organization_id: int, batch_type: str, key, data: dict, carrier_id: int | None = None
) -> None:
    """From code on the event loop (the ingest fast path), after its write: `data` joins this
    tick's `batch_type` message of the organization (and of `carrier_id`'s group), at most once
    per CONSOLE_COALESCE_WINDOW_S per key; an item inside the key's window replaces any parked
    one and goes out when the window ends. Returns at once: the caller never waits for Redis.
    Failures are logged, never raised."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = _Batcher()
    batcher.add(organization_id, batch_type, (key, carrier_id, data))


def publish_coalesced_sync_now(
    *, organization_id: int, batch_type: str, key, data: dict, carrier_id: int | None = None
) -> bool:
    """The sync twin for code that runs after its commit (live event handlers): a batch of one,
    sent now unless the key's window is open (then parked). Returns whether it was sent now;
    failures are logged, never raised."""
    sent = 0
    items = [(key, carrier_id, data)]
    for keys, args in _batch_calls(organization_id, batch_type, items, gated=True):
        try:
            sent += sync_redis().eval(_OFFER_AND_PUBLISH, len(keys), *keys, *args)
        except Exception:  # noqa: BLE001
            logger.warning("could not publish %s %s", batch_type, key, exc_info=True)
    return bool(sent)


async def flush_due() -> int:
    """Send every parked item whose window has ended, batched per organization. Returns how
    many were sent."""
    due_key, latest_key = _key("due"), _key("latest")
    payloads = await async_redis().eval(
        _CLAIM, 2, due_key, latest_key, _key("gate", ""), _window_ms(), BATCH_LIMIT
    )
    batches: dict[tuple[int, str], list] = {}
    for raw in payloads:
        parked = json.loads(raw)
        if "t" not in parked:  # parked by a process of the previous release
            continue
        item = (parked["d"].get("id"), parked["c"], parked["d"])
        batches.setdefault((parked["o"], parked["t"]), []).append(item)
    sent = 0
    for (organization_id, batch_type), items in batches.items():
        sent += await _offer_async(organization_id, batch_type, items, gated=False)
    return sent


class _Flusher:
    """Runs `flush_due` every tick on one event loop while at least one socket is open on it."""

    def __init__(self) -> None:
        self.users = 0
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        tick = settings.CONSOLE_COALESCE_TICK_S
        while self.users > 0:
            try:
                await flush_due()
            except Exception:  # noqa: BLE001
                logger.warning("coalesced flush failed", exc_info=True)
                await asyncio.sleep(1)
            await asyncio.sleep(tick)


_flushers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def flusher_acquire() -> None:
    """Called by each websocket on connect: keeps this loop's flusher running."""
    loop = asyncio.get_running_loop()
    flusher = _flushers.setdefault(loop, _Flusher())
    flusher.users += 1
    if flusher.task is None or flusher.task.done():
        flusher.task = loop.create_task(flusher.run())


async def flusher_release() -> None:
    """Called on disconnect; the last socket on a loop stops its flusher."""
    flusher = _flushers.get(asyncio.get_running_loop())
    if flusher is None:
        return
    flusher.users = max(0, flusher.users - 1)
    if flusher.users == 0 and flusher.task is not None:
        # Not cancelled: a flush in flight has claimed its messages and must send them.
        await asyncio.wait([flusher.task], timeout=settings.CONSOLE_COALESCE_TICK_S * 5 + 2)


# ---------------------------------------------------------------------------------------------
# Delivery: one Redis Pub/Sub subscription per process (event loop) and group, fanned out to
# that process's sockets. A delta crosses Redis once per process, not once per socket, and is
# serialized once by its publisher (channels' per-socket group_send did not keep up with 20
# dispatchers × 400 positions/s on two cores: bench/console_live.py).
# ---------------------------------------------------------------------------------------------


class _LiveHub:
    def __init__(self) -> None:
        self.members: dict[str, set] = {}
        # Set once a channel's SUBSCRIBE has been answered. Sockets that join a channel while
        # its subscription is still on its way wait for it, so nobody says "hello" (and reads
        # the group's seq) before deltas can reach them, and the reader task never starts on a
        # Pub/Sub object that has no connection yet ("pubsub connection not set").
        self.subscribed: dict[str, asyncio.Event] = {}
        self.pubsub = None
        self.task: asyncio.Task | None = None
        # SUBSCRIBE and UNSUBSCRIBE go out one at a time: a leave and a join of the same
        # channel in quick succession reach Redis in the order they happened.
        self.commands = asyncio.Lock()

    async def join(self, group: str, deliver) -> None:
        channel = live_channel(group)
        if self.pubsub is None:
            self.pubsub = async_redis().pubsub(ignore_subscribe_messages=True)
        self.members.setdefault(channel, set()).add(deliver)
        ready = self.subscribed.get(channel)
        if ready is None:
            ready = self.subscribed[channel] = asyncio.Event()
            try:
                async with self.commands:
                    await self.pubsub.subscribe(channel)
            except BaseException:
                # Those waiting for this subscription try again themselves.
                self.subscribed.pop(channel, None)
                self.members.get(channel, set()).discard(deliver)
                if not self.members.get(channel, True):
                    del self.members[channel]
                ready.set()
                raise
            ready.set()
        else:
            await ready.wait()
            if self.subscribed.get(channel) is not ready:  # it failed, or everyone left
                return await self.join(group, deliver)
        if self.task is None or self.task.done():
            # done(): a reader that died of something unforeseen is replaced, not waited on.
            self.task = asyncio.get_running_loop().create_task(self.run())

    async def leave(self, group: str, deliver) -> None:
        channel = live_channel(group)
        members = self.members.get(channel)
        if members is None:
            return
        members.discard(deliver)
        if not members:
            del self.members[channel]
            self.subscribed.pop(channel, None)
            try:
                async with self.commands:
                    await self.pubsub.unsubscribe(channel)
            except Exception:  # noqa: BLE001
                logger.warning("could not unsubscribe %s", channel, exc_info=True)

    async def run(self) -> None:
        while True:
            if not self.members:
                self.task = None  # no await between the check and this: join() restarts it
                return
            try:
                message = await self.pubsub.get_message(timeout=1.0)
            except Exception:  # noqa: BLE001
                if not self.members:
                    continue  # the last socket left meanwhile: redis-py dropped the connection
                logger.warning("live subscription failed", exc_info=True)
                await asyncio.sleep(1)
                continue
            if message is None or message["type"] != "message":
                continue
            channel = message["channel"].decode()
            raw = message["data"].decode()
            for deliver in list(self.members.get(channel, ())):
                # This task is the process's only reader: one socket's failing callback must
                # not silence every other socket (it used to end the task for good).
                try:
                    deliver(raw)
                except Exception:  # noqa: BLE001
                    logger.warning("a live socket failed to take a delta", exc_info=True)


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _hub() -> _LiveHub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = _LiveHub()
    return hub


async def live_join(group: str, deliver) -> None:
    """Call `deliver(text)` with every delta sent to `group` from now on (the text is the
    message's JSON, ready for a websocket frame). `deliver` must not block."""
    await _hub().join(group, deliver)


async def live_leave(group: str, deliver) -> None:
    await _hub().leave(group, deliver)
