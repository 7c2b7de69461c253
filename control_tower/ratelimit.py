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

import hashlib
import logging
import time

import redis
from django.conf import settings

from control_tower.redis_clients import sync_redis

logger = logging.getLogger(__name__)

# Short timeouts: a page view must not wait on a slow Redis.
REDIS_TIMEOUT_S = 0.5


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
    except redis.RedisError:
        logger.exception("rate limit %s not counted: Redis unavailable", scope)
        return 0
    return int(count)


def rate_limited(scope: str, key: str, *, limit: int, window_s: int) -> bool:
    """Count one hit and say whether (scope, key) is now over `limit` hits in this window of
    `window_s` seconds. `scope` names the rule ("track-token", "track-ip", "lookup-ip" ...);
    `key` is who is counted (a token hash, a client IP)."""
    if limit <= 0:
        return False
    return rate_hit(scope, key, window_s=window_s) > limit


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or with `TRUSTED_PROXY_COUNT` proxies in front, the
    address that many entries from the right of X-Forwarded-For (the left ones are whatever
    the client wrote, so they are never trusted)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
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
