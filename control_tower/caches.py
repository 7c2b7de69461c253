"""The one in-process cache of the project: answers a process may remember for a few seconds
(a verified device token, the routes of a device, a loaded road network ...).

Underneath is `cachetools` (a time-aware LRU: when full it drops the least recently used entry
instead of everything at once), behind a lock because ingest threads, the ETA publisher thread
and the event loop share these caches. The lifetime may be a number or a function read at each
insertion, so a setting changed at run time (tests) takes effect at once; a lifetime of 0
disables the cache. Nothing here is shared between processes: whatever must be seen by every
worker at once belongs in Redis or the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import LRUCache, TLRUCache

_MISSING = object()


class LocalCache:
    """A bounded, thread-safe key/value memo whose entries expire `ttl_s` seconds after they were
    stored (`ttl_s=None`: they never expire, only the least recently used ones are dropped)."""

    def __init__(self, *, maxsize: int, ttl_s: float | Callable[[], float] | None) -> None:
        self._ttl = ttl_s if callable(ttl_s) or ttl_s is None else (lambda: ttl_s)
        self._lock = threading.Lock()
        if self._ttl is None:
            self._cache: LRUCache = LRUCache(maxsize=maxsize)
        else:
            self._cache = TLRUCache(
                maxsize=maxsize, ttu=lambda _k, _v, now: now + self._ttl(), timer=time.monotonic
            )

    def _enabled(self) -> bool:
        return self._ttl is None or self._ttl() > 0

    def get(self, key: Hashable, default: Any = None) -> Any:
        if not self._enabled():
            return default
        with self._lock:
            return self._cache.get(key, default)

    def set(self, key: Hashable, value: Any) -> None:
        if not self._enabled():
            return
        with self._lock:
            self._cache[key] = value

    def get_or_set(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The remembered value, or `compute()` remembered (computed outside the lock, so two
        threads may both compute it once: fine for idempotent reads)."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = compute()
            self.set(key, value)
        return value

    def pop(self, key: Hashable) -> None:
        with self._lock:
            self._cache.pop(key, None)

    def discard_where(self, predicate: Callable[[Hashable, Any], bool]) -> None:
        """Drop every entry for which `predicate(key, value)` is true."""
        with self._lock:
            for key in [k for k, v in self._cache.items() if predicate(k, v)]:
                self._cache.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
