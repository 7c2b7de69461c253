"""The fan-out's per-process memory of each organization's endpoints (webhooks/fanout.py reads
it; saving or deleting an endpoint forgets its organization's entry in this process). Its own
module so the model can forget without importing the fan-out."""

from __future__ import annotations

import threading

from cachetools import TTLCache

from webhooks import conf

_cache: TTLCache = TTLCache(maxsize=4096, ttl=5.0)
_lock = threading.Lock()


def get(organization_id: int):
    with _lock:
        global _cache
        if _cache.ttl != conf.get("WEBHOOKS_ENDPOINT_CACHE_S"):  # a setting changed (tests)
            _cache = TTLCache(maxsize=4096, ttl=conf.get("WEBHOOKS_ENDPOINT_CACHE_S"))
        return _cache.get(organization_id)


def put(organization_id: int, endpoints) -> None:
    with _lock:
        _cache[organization_id] = endpoints


def forget(organization_id: int | None) -> None:
    with _lock:
        _cache.pop(organization_id, None)
