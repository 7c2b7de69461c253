"""Rate limits, in one place: a fixed-window counter per (scope, key) in Redis.

Why hand-written and not django-ratelimit: the callers are not only views (the lookup service,
the recipient's actions, the page's socket), and the rule is three Redis commands. One
`INCR` + `EXPIRE` in a MULTI/EXEC is atomic, so concurrent requests on several web processes
count exactly; a fixed window lets a burst of up to 2 × limit straddle a window boundary,
which is acceptable for abuse control (a sliding log would cost a sorted set per key).

The key (a token hash, an IP address) is hashed again before it becomes part of a Redis key,
so Redis holds no client address in clear. If Redis is unreachable the limit fails open (the
page keeps working; the error is logged): a rate limit protects against abuse, it must not
become the outage.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

import redis
from django.conf import settings

from control_tower.redis_clients import async_redis, sync_redis

logger = logging.getLogger(__name__)

# Short timeouts: a page view must not wait on a slow Redis.
REDIS_TIMEOUT_S = 0.5
# A limit that could not be checked lets the request through (fail open) and says so at most
# this often per process: under load a slow answer (often a starved event loop, not Redis) would
# otherwise write a traceback per request (seen in the soak, docs/RELIABILITY.md).
FAIL_OPEN_LOG_EVERY_S = 30.0
_last_fail_open_log = 0.0


def _redis_key(scope: str, key: str, window_s: int, now: float) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    window = int(now // window_s)
    return f"{settings.RATELIMIT_KEY_PREFIX}:rl:{scope}:{digest}:{window_s}:{window}"


def rate_hit(scope: str, key: str, *, window_s: int, now: float | None = None) -> int:
    """Count one hit for (scope, key) in the current window; return the window's count so
    far (this hit included), or 0 when Redis could not be reached."""
    now = time.time() if now is None else now
    name = _redis_key(scope, key, window_s, now)
    try:
        pipe = sync_redis(timeout_s=REDIS_TIMEOUT_S).pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, window_s + 1)
        count, _ = pipe.execute()
    except redis.RedisError as exc:
        _fail_open(scope, "counted", exc)
        return 0
    return int(count)


def rate_limited(scope: str, key: str, *, limit: int, window_s: int) -> bool:
    """Count one hit and say whether (scope, key) is now over `limit` hits in this window of
    `window_s` seconds. `scope` names the rule ("track-token", "track-ip", "lookup-ip" ...);
    `key` is who is counted (a token hash, a client IP)."""
    if limit <= 0:
        return False
    return rate_hit(scope, key, window_s=window_s) > limit


def rate_count(scope: str, key: str, *, window_s: int, now: float | None = None) -> int:
    """The current window's count for (scope, key) without counting a hit (0 when Redis
    could not be reached: fail open, as `rate_hit`)."""
    now = time.time() if now is None else now
    try:
        value = sync_redis(timeout_s=REDIS_TIMEOUT_S).get(_redis_key(scope, key, window_s, now))
    except redis.RedisError as exc:
        _fail_open(scope, "read", exc)
        return 0
    return int(value or 0)


async def rate_hit_async(scope: str, key: str, *, window_s: int) -> int:
    """`rate_hit` for the event loop (the ingest fast path)."""
    name = _redis_key(scope, key, window_s, time.time())
    try:
        pipe = async_redis().pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, window_s + 1)
        count, _ = await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_S)
    except (redis.RedisError, TimeoutError) as exc:
        _fail_open(scope, "counted", exc)
        return 0
    return int(count)


async def rate_count_async(scope: str, key: str, *, window_s: int) -> int:
    """`rate_count` for the event loop."""
    name = _redis_key(scope, key, window_s, time.time())
    try:
        value = await asyncio.wait_for(async_redis().get(name), REDIS_TIMEOUT_S)
    except (redis.RedisError, TimeoutError) as exc:
        _fail_open(scope, "read", exc)
        return 0
    return int(value or 0)


def window_retry_after(window_s: int, now: float | None = None) -> int:
    """Seconds until the current fixed window of `window_s` ends (at least 1): the honest
    `Retry-After` of a limit counted in such windows."""
    now = time.time() if now is None else now
    return max(1, int(window_s - now % window_s + 0.999))


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or with `TRUSTED_PROXY_COUNT` proxies in front, the
    address that many entries from the right of X-Forwarded-For (the left ones are whatever
    the client wrote, so they are never trusted)."""
    return client_ip_from(
        request.META.get("REMOTE_ADDR", "") or "", request.META.get("HTTP_X_FORWARDED_FOR", "")
    )


def client_ip_from(remote: str, forwarded_for: str) -> str:
    """`client_ip` from the raw values (the ASGI fast path has no Django request)."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [p.strip() for p in forwarded_for.split(",")]
    forwarded = [p for p in forwarded if p]
    if len(forwarded) >= hops:
        return forwarded[-hops]
    return remote


def ratelimit_reset(scope: str | None = None) -> int:
    """Delete the counters of `scope` (all scopes: None). For tests and the operator who
    lifts a block by hand; returns how many counters were deleted."""
    pattern = f"{settings.RATELIMIT_KEY_PREFIX}:rl:{scope or '*'}:*"
    client = sync_redis(timeout_s=REDIS_TIMEOUT_S)
    names = list(client.scan_iter(match=pattern, count=500))
    if names:
        client.delete(*names)
    return len(names)


def _fail_open(scope: str, action: str, exc: BaseException) -> None:
    global _last_fail_open_log
    now = time.monotonic()
    if now - _last_fail_open_log < FAIL_OPEN_LOG_EVERY_S:
        return
    _last_fail_open_log = now
    logger.warning(
        "rate limit %s not %s (let through): Redis did not answer within %s s (%s)",
        scope, action, REDIS_TIMEOUT_S, type(exc).__name__,
    )  # fmt: skip
