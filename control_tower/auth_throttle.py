"""Failed machine credentials (API keys, device tokens) per client IP.

Every surface that checks such a credential (the DRF authentication classes, the OsmAnd and
OwnTracks fast path) asks `auth_retry_after` first and calls `auth_failed` on a miss. Only
failures are counted, so a busy client with a good key is never slowed; once an IP has
`AUTH_FAILURES_PER_IP` failures in the current window of `AUTH_FAILURE_WINDOW_S` seconds, its
credentialed requests are answered 429 with `Retry-After` (the end of the window) without
looking the credential up, so a guesser learns nothing more until then. Counted in Redis
(control_tower/ratelimit.py), failing open when Redis is away.
"""

from __future__ import annotations

from django.conf import settings

from control_tower.ratelimit import (
    rate_count,
    rate_count_async,
    rate_hit,
    rate_hit_async,
    window_retry_after,
)

SCOPE = "auth-fail-ip"


def _wait(count: int) -> int | None:
    if settings.AUTH_FAILURES_PER_IP <= 0 or count < settings.AUTH_FAILURES_PER_IP:
        return None
    return window_retry_after(settings.AUTH_FAILURE_WINDOW_S)


def auth_retry_after(ip: str) -> int | None:
    """Seconds the IP must wait before its credentials are checked again, or None."""
    if settings.AUTH_FAILURES_PER_IP <= 0:
        return None
    return _wait(rate_count(SCOPE, ip, window_s=settings.AUTH_FAILURE_WINDOW_S))


def auth_failed(ip: str) -> None:
    if settings.AUTH_FAILURES_PER_IP > 0:
        rate_hit(SCOPE, ip, window_s=settings.AUTH_FAILURE_WINDOW_S)


async def auth_retry_after_async(ip: str) -> int | None:
    if settings.AUTH_FAILURES_PER_IP <= 0:
        return None
    return _wait(await rate_count_async(SCOPE, ip, window_s=settings.AUTH_FAILURE_WINDOW_S))


async def auth_failed_async(ip: str) -> None:
    if settings.AUTH_FAILURES_PER_IP > 0:
        await rate_hit_async(SCOPE, ip, window_s=settings.AUTH_FAILURE_WINDOW_S)
