"""The rate limiter: a fixed window per (scope, key) in the real Redis, counted atomically."""

from __future__ import annotations

import threading

import pytest

from control_tower.ratelimit import client_ip, rate_hit, rate_limited, ratelimit_reset
from control_tower.redis_clients import sync_redis


@pytest.fixture(autouse=True)
def _fresh():
    ratelimit_reset("test-scope")
    yield
    ratelimit_reset("test-scope")


def test_over_the_limit_within_a_window_then_free_in_the_next():
    answers = [rate_limited("test-scope", "k", limit=3, window_s=60) for _ in range(5)]
    assert answers == [False, False, False, True, True]
    assert not rate_limited("test-scope", "other key", limit=3, window_s=60)
    # The next window starts from zero.
    import time

    later = time.time() + 60
    assert rate_hit("test-scope", "k", window_s=60, now=later) == 1


def test_counting_is_atomic_under_concurrency():
    def hammer():
        for _ in range(50):
            rate_hit("test-scope", "shared", window_s=60)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert rate_hit("test-scope", "shared", window_s=60) == 8 * 50 + 1


def test_the_key_is_hashed_in_redis_and_expires():
    rate_hit("test-scope", "203.0.113.9", window_s=60)
    names = [n.decode() for n in sync_redis().scan_iter(match="*:rl:test-scope:*")]
    assert names and all("203.0.113.9" not in n for n in names)
    assert all(0 < sync_redis().ttl(n) <= 61 for n in names)


def test_client_ip_trusts_only_the_configured_proxies(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.4")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "198.51.100.4"  # never the client-written 6.6.6.6
