"""Recomputing ETAs when vehicles report: on new pings, debounced per route, in bursts.

After a ping moved a device's last position (committed; outliers and late fixes never move it),
every route its driver or vehicle is on today is marked due at once (the leading edge), then
not again for ETA_DEBOUNCE_S seconds however often the phone reports: a Redis `SET NX PX` per
(organization, route) decides, so several web processes agree. Due routes wait in a Redis sorted
set per organization (scored by when the ping that made them due was received); the first one
queues a `tracking.eta_burst` task for the organization, which takes everything due (in batches
of up to BATCH_MAX) and recomputes it in bulk (tracking/eta/bulk.py). While a burst task is
queued and not yet started, further due routes queue nothing: they join it. Pings inside
that window are picked up by the beat sweep afterwards (the trailing edge: `tracking.eta_sweep`
recomputes routes whose vehicle reported since their last ETA); the sweep claims the same key,
so it skips routes that a ping has just recomputed.

Nothing here may fail an ingest: the ping is already durable. Redis or broker errors are logged
and swallowed; the sweep redoes the work once they are back.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

import redis
from celery import current_app
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from control_tower.caches import LocalCache
from control_tower.redis_clients import sync_redis
from tracking.models import ACTIVE_ROUTE_STATUSES, Route

if TYPE_CHECKING:
    from tracking.ingest.pings import DeviceRef

logger = logging.getLogger(__name__)

ACTIVE = ACTIVE_ROUTE_STATUSES
# Which routes a device is on changes a few times a day, while it reports every few seconds:
# each process remembers the answer briefly (a route assigned meanwhile is caught by the sweep).
ROUTES_CACHE_S = 10.0
REDIS_TIMEOUT_S = 0.5  # an ingest must not hang on a Redis that is away
# The task that recomputes one route's ETAs (tracking/tasks.py; stop events, plan changes), and
# the one that recomputes every due route of an organization (pings), queued by their names: the
# tasks module imports this one.
ETA_UPDATE_ROUTE = "tracking.eta_update_route"
ETA_BURST = "tracking.eta_burst"
# How long a queued burst task keeps others from being queued. If it is lost (a worker killed),
# the next due route queues another after this; the sweep catches up meanwhile.
BURST_PENDING_S = 30

_routes_cache = LocalCache(maxsize=20_000, ttl_s=ROUTES_CACHE_S)

# Sent when a ping made routes due (organization_id=, route_ids=): what tests observe instead of
# one task per route. Nothing in the application listens.
routes_due = Signal()


def _redis() -> redis.Redis:
    return sync_redis(timeout_s=REDIS_TIMEOUT_S)


def debounce_key(*, organization_id: int, route_id: int) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "ct"
    return f"{prefix}:eta:debounce:{organization_id}:{route_id}"


def due_key(organization_id: int) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "ct"
    return f"{prefix}:eta:due:{organization_id}"


def burst_pending_key(organization_id: int) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "ct"
    return f"{prefix}:eta:burst:{organization_id}"


def kick_burst(organization_id: int, client: redis.Redis | None = None) -> bool:
    """Queue a burst task for the organization unless one is queued and not started yet.
    Returns whether one was queued."""
    client = client or _redis()
    if not client.set(burst_pending_key(organization_id), 1, nx=True, px=BURST_PENDING_S * 1000):
        return False
    current_app.send_task(ETA_BURST, kwargs={"organization_id": organization_id}, retry=False)
    return True


def routes_mark_due(*, organization_id: int, route_ids: list[int], received_at: datetime) -> None:
    """Add the routes to the organization's due set (a route already due keeps its earlier
    ping: its latency counts from there) and make sure a burst task will take them. The route is
    added before the burst is queued, and the task forgets its pending mark before it takes: a
    route is never left due with no task coming."""
    if not route_ids:
        return
    client = _redis()
    client.zadd(
        due_key(organization_id), dict.fromkeys(route_ids, received_at.timestamp()), nx=True
    )
    routes_due.send(sender=None, organization_id=organization_id, route_ids=list(route_ids))
    kick_burst(organization_id, client)


def take_due(organization_id: int, count: int) -> tuple[list[tuple[int, float]], int]:
    """Up to `count` due routes, the longest waiting first, removed from the set (two burst
    tasks never take the same route): [(route id, ping received at as epoch seconds)], and how
    many are still due after them."""
    pipe = _redis().pipeline(transaction=True)
    pipe.zpopmin(due_key(organization_id), count)
    pipe.zcard(due_key(organization_id))
    taken, left = pipe.execute()
    return [(int(member), score) for member, score in taken], left


def burst_started(organization_id: int) -> None:
    """A burst task is running: a route due from now on queues the next one."""
    _redis().delete(burst_pending_key(organization_id))


def routes_claim(*, organization_id: int, route_ids: list[int]) -> list[int]:
    """The routes among `route_ids` whose debounce window was open, now closed for
    ETA_DEBOUNCE_S: the caller recomputes exactly those. One Redis round trip. Raises
    redis errors (callers decide: a ping skips, the sweep recomputes anyway)."""
    if not route_ids:
        return []
    window_ms = max(1, int(settings.ETA_DEBOUNCE_S * 1000))
    # Each window a little longer at random: vehicles that started reporting together would
    # otherwise reopen their windows together forever, and the worker would get their
    # recomputes in bursts (a fleet's worth at once every window) instead of a steady stream.
    jitter_ms = int(settings.ETA_DEBOUNCE_JITTER_S * 1000)
    pipe = _redis().pipeline(transaction=False)
    for route_id in route_ids:
        key = debounce_key(organization_id=organization_id, route_id=route_id)
        pipe.set(key, 1, nx=True, px=window_ms + random.randint(0, jitter_ms))  # noqa: S311
    return [route_id for route_id, won in zip(route_ids, pipe.execute(), strict=True) if won]


def device_routes_today(ref: DeviceRef) -> tuple[int, ...]:
    """Ids of the planned or running routes of the device's driver or vehicle around today
    (the sweep's window: tenants' days differ from the server's)."""
    if not ref.driver_id and not ref.vehicle_id:
        return ()
    key = (ref.organization_id, ref.driver_id, ref.vehicle_id)
    hit = _routes_cache.get(key)
    if hit is not None:
        return hit
    whose = Q(pk__in=[])
    if ref.driver_id:
        whose |= Q(driver_id=ref.driver_id)
    if ref.vehicle_id:
        whose |= Q(vehicle_id=ref.vehicle_id)
    today = timezone.now()
    # Scoped explicitly: the organization is the authenticated device's (no request scope on
    # the ASGI fast path).
    routes = tuple(
        Route.dangerously_unscoped.filter(
            whose,
            organization_id=ref.organization_id,
            status__in=ACTIVE,
            date__gte=(today - timedelta(days=1)).date(),
            date__lte=(today + timedelta(days=1)).date(),
        ).values_list("id", flat=True)
    )
    _routes_cache.set(key, routes)
    return routes


def eta_on_position(*, ref: DeviceRef, received_at: datetime) -> int:
    """A committed ping moved `ref`'s position: mark due each of its routes whose debounce
    window is open (a burst task takes them). Returns how many. Never raises."""
    try:
        routes = device_routes_today(ref)
        claimed = routes_claim(organization_id=ref.organization_id, route_ids=list(routes))
        routes_mark_due(
            organization_id=ref.organization_id, route_ids=claimed, received_at=received_at
        )
        return len(claimed)
    except Exception:  # noqa: BLE001 - the ping is stored; the sweep catches up
        logger.warning(
            "ETA trigger failed for device %s; the sweep will catch up", ref.id, exc_info=True
        )
        return 0


def eta_on_position_on_commit(*, ref: DeviceRef, received_at: datetime) -> None:
    """The Django ingest path: trigger once the ping's transaction commits (at once under
    autocommit)."""
    transaction.on_commit(partial(eta_on_position, ref=ref, received_at=received_at))


# The ASGI fast path hands its triggers to one publisher thread per process and answers the
# phone at once. Running them on the event loop's thread pool instead made every ingest wait for
# a database query, a Redis round trip and a broker publish, and several such threads fighting
# the event loop for the GIL stalled it under load (requests then arrived in bursts, and so did
# the recomputes). A trigger lost with its process is caught up by the sweep.
_pending: queue.Queue = queue.Queue(maxsize=50_000)
_publisher: threading.Thread | None = None
_publisher_lock = threading.Lock()


def _publish_forever() -> None:
    while True:
        ref, received_at = _pending.get()
        try:
            eta_on_position(ref=ref, received_at=received_at)
        finally:
            if _pending.empty():
                # Idle: give the thread's database connection back (the pool keeps it warm).
                connections["default"].close()
            _pending.task_done()


def _start_publisher() -> None:
    global _publisher
    with _publisher_lock:
        if _publisher is None or not _publisher.is_alive():
            _publisher = threading.Thread(
                target=_publish_forever, name="eta-trigger-publisher", daemon=True
            )
            _publisher.start()


async def eta_on_position_async(*, ref: DeviceRef, received_at: datetime) -> None:
    """The ASGI fast path (its write is autocommitted): the same, handed to this process's
    publisher thread; never blocks the event loop, never fails the ping."""
    _start_publisher()
    try:
        _pending.put_nowait((ref, received_at))
    except queue.Full:
        logger.warning("ETA trigger queue full; the sweep will catch up device %s", ref.id)


def wait_until_published(timeout: float = 10.0) -> None:
    """Block until every trigger handed over so far is published (tests, benchmarks)."""
    deadline = time.monotonic() + timeout
    while _pending.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.01)
