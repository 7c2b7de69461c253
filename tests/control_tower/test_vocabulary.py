"""The shared vocabulary of control_tower: one time format, one error body, one in-process
cache, one place that makes Redis clients."""

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from control_tower.caches import LocalCache
from control_tower.errors import error_body
from control_tower.redis_clients import async_redis, sync_redis
from control_tower.times import iso


def test_times_are_spelled_in_utc_with_their_offset_whatever_zone_they_come_in():
    moment = datetime(2026, 3, 2, 11, 5, tzinfo=ZoneInfo("America/Santiago"))
    assert iso(moment) == "2026-03-02T14:05:00+00:00"
    assert iso(datetime(2026, 3, 2, 14, 5, tzinfo=UTC)) == "2026-03-02T14:05:00+00:00"
    assert iso(datetime(2026, 3, 2, 16, 5, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-03-02T14:05:00+00:00"
    )
    assert iso(None) is None


def test_the_error_body_always_has_its_three_keys():
    assert error_body("not_found", "Not found.") == {
        "error": "not_found",
        "detail": "Not found.",
        "fields": {},
    }
    assert error_body("validation_error", "Bad.", {"lat": ["Out of range."]})["fields"] == {
        "lat": ["Out of range."]
    }


def test_cached_answers_expire_after_their_lifetime():
    cache = LocalCache(maxsize=10, ttl_s=0.05)
    cache.set("token", "device 7")
    assert cache.get("token") == "device 7"
    time.sleep(0.08)
    assert cache.get("token") is None


def test_a_lifetime_read_from_settings_applies_at_once_and_zero_turns_the_cache_off():
    lifetime = {"s": 60.0}
    cache = LocalCache(maxsize=10, ttl_s=lambda: lifetime["s"])
    cache.set("a", 1)
    assert cache.get("a") == 1
    lifetime["s"] = 0
    assert cache.get("a") is None
    cache.set("b", 2)
    lifetime["s"] = 60.0
    assert cache.get("b") is None


def test_a_full_cache_drops_the_least_recently_used_entry_not_everything():
    cache = LocalCache(maxsize=2, ttl_s=None)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.set("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_entries_are_dropped_by_value_and_computed_once_when_missing():
    cache = LocalCache(maxsize=10, ttl_s=60)
    cache.set("t1", {"id": 7})
    cache.set("t2", {"id": 8})
    cache.discard_where(lambda _key, device: device["id"] == 7)
    assert cache.get("t1") is None and cache.get("t2") == {"id": 8}
    calls = []
    assert cache.get_or_set("n", lambda: calls.append(1) or 42) == 42
    assert cache.get_or_set("n", lambda: calls.append(1) or 43) == 42
    assert calls == [1]


def test_threads_share_one_cache_safely():
    cache = LocalCache(maxsize=100, ttl_s=60)
    errors = []

    def hammer(offset: int) -> None:
        try:
            for i in range(2_000):
                cache.set((offset, i % 150), i)
                cache.get((offset, (i * 7) % 150))
                if i % 97 == 0:
                    cache.discard_where(lambda key, _value: key[1] % 2 == 0)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 100


def test_one_sync_client_per_process_and_timeout_and_it_talks_to_redis():
    assert sync_redis() is sync_redis()
    assert sync_redis(timeout_s=0.5) is sync_redis(timeout_s=0.5)
    assert sync_redis(timeout_s=0.5) is not sync_redis()
    assert sync_redis(timeout_s=0.5).connection_pool.connection_kwargs["socket_timeout"] == 0.5
    assert sync_redis().ping() is True


def test_a_redis_url_changed_at_run_time_gets_its_own_client(settings):
    before = sync_redis()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert sync_redis() is not before
    assert sync_redis().connection_pool.connection_kwargs["port"] == 1


def test_one_async_client_per_event_loop():
    async def clients():
        first, second = async_redis(), async_redis()
        assert await first.ping() is True
        await first.aclose()
        return first, second

    first_loop = asyncio.run(clients())
    second_loop = asyncio.run(clients())
    assert first_loop[0] is first_loop[1]
    assert second_loop[0] is not first_loop[0]


@pytest.mark.parametrize("ttl", [0, 0.0])
def test_a_disabled_cache_stores_nothing(ttl):
    cache = LocalCache(maxsize=10, ttl_s=ttl)
    cache.set("a", 1)
    assert cache.get("a") is None and len(cache) == 0
