"""The project's Redis clients, made in one place: one sync client per process (shared by its
threads: redis-py pools connections) and one async client per event loop (redis.asyncio
connections belong to the loop that opened them). Clients are keyed by URL and timeout, so a
caller that must not hang (ingest) gets short timeouts without changing anyone else's."""

from __future__ import annotations

import asyncio
import threading
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings

_sync_clients: dict[tuple[str, float | None], redis.Redis] = {}
_sync_lock = threading.Lock()
_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def sync_redis(*, timeout_s: float | None = None) -> redis.Redis:
    """This process's client for `settings.REDIS_URL`; `timeout_s` bounds connecting and each
    command (None: wait as long as it takes)."""
    key = (settings.REDIS_URL, timeout_s)
    client = _sync_clients.get(key)
    if client is None:
        with _sync_lock:
            client = _sync_clients.get(key)
            if client is None:
                client = redis.Redis.from_url(
                    key[0], socket_timeout=timeout_s, socket_connect_timeout=timeout_s
                )
                _sync_clients[key] = client
    return client


def async_redis() -> aioredis.Redis:
    """The running event loop's client for `settings.REDIS_URL`."""
    loop = asyncio.get_running_loop()
    clients = _async_clients.get(loop)
    if clients is None:
        clients = _async_clients[loop] = {}
    client = clients.get(settings.REDIS_URL)
    if client is None:
        client = clients[settings.REDIS_URL] = aioredis.Redis.from_url(settings.REDIS_URL)
    return client
