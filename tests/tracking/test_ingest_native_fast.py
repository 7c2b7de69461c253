"""`parse_native_many` (the batch API's parser, with a fast path for the plain shape) against
`parse_native` one item at a time (the path it replaces): the same Fix for every item it
accepts, the same error (index, field, message) for every item it refuses. Pure: no database."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracking.ingest.fixes import FixError
from tracking.ingest.protocols import _plain_native, parse_native, parse_native_many

NOW = dt.datetime(2026, 11, 25, 13, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fixed_now(monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)


def one_by_one(items):
    fixes, errors = [], {}
    for index, item in enumerate(items):
        try:
            fixes.append(parse_native(item))
        except FixError as exc:
            errors[str(index)] = {exc.field: [exc.message]}
    return fixes, errors


numbers = st.one_of(
    st.integers(min_value=-200, max_value=200),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=-100, max_value=400),
    st.sampled_from([0, 0.0, -1, 10**19, True, False, "12.5", "", "-1", "x", [], {}]),
    st.none(),
)
times = st.one_of(
    st.datetimes(
        min_value=dt.datetime(1999, 12, 30),
        max_value=dt.datetime(2026, 11, 27),
        timezones=st.sampled_from(
            [dt.UTC, dt.timezone(dt.timedelta(hours=-3)), dt.timezone(dt.timedelta(hours=14))]
        ),
    ).map(lambda d: d.isoformat()),
    st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2026, 11, 26)).map(
        lambda d: d.isoformat()  # naive: taken as UTC
    ),
    st.integers(min_value=-5, max_value=2**42),
    st.sampled_from(["1764000000", "2026-11-25T12:00:00Z", " 2026-11-25T12:00:00Z", "soon", ""]),
    st.none(),
)
flags = st.one_of(st.none(), st.booleans(), st.sampled_from(["true", "0", "yes", 1, "maybe"]))
items = st.one_of(
    st.fixed_dictionaries(
        {"time": times, "lat": numbers, "lon": numbers},
        optional={
            "event_id": st.one_of(
                st.text(max_size=70), st.sampled_from(["", "e1", "a\x00b", None, 7, "é" * 65])
            ),
            "accuracy": numbers,
            "speed": numbers,
            "heading": numbers,
            "altitude": numbers,
            "battery": numbers,
            "charging": flags,
            "moving": flags,
            "mock": flags,
            "attributes": st.one_of(
                st.none(), st.just({}), st.just([]), st.just({"k": "v"}), st.just("x")
            ),
            "sped": st.just(3),
        },
    ),
    st.sampled_from(["not an object", 3, None, []]),
)
plain = st.fixed_dictionaries(
    {
        "time": st.datetimes(
            min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 11, 25, 12)
        ).map(lambda d: d.replace(tzinfo=dt.UTC).isoformat()),
        "lat": st.floats(min_value=-90, max_value=90),
        "lon": st.floats(min_value=-180, max_value=180),
    },
    optional={
        "event_id": st.text(alphabet="abc123-", max_size=64),
        "accuracy": st.floats(min_value=0, max_value=100_000),
        "speed": st.integers(min_value=0, max_value=340),
        "heading": st.floats(min_value=0, max_value=720),
        "altitude": st.floats(min_value=-1000, max_value=9000),
        "battery": st.floats(min_value=0, max_value=100),
        "charging": st.booleans(),
        "moving": st.booleans(),
        "mock": st.booleans(),
    },
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(items, max_size=6))
def test_any_input_gives_the_same_fixes_and_errors(batch):
    assert parse_native_many(batch) == one_by_one(batch)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(plain, min_size=1, max_size=5))
def test_the_plain_shape_takes_the_fast_path_and_gives_the_same_fixes(batch):
    latest = NOW + dt.timedelta(days=1)
    fast = [_plain_native(item, latest) for item in batch]
    valid = [item for item in batch if not (item["lat"] == 0 and item["lon"] == 0)]
    assert sum(fix is not None for fix in fast) == len(valid)
    assert parse_native_many(batch) == one_by_one(batch)


def test_what_the_driver_app_sends_is_parsed_fast_and_the_same():
    item = {
        "event_id": "e-1",
        "time": "2026-11-25T09:59:58.250-03:00",
        "lat": -29.9,
        "lon": -71.25,
        "accuracy": 6,
        "speed": 10.5,
        "heading": 361.0,
        "altitude": 30,
        "battery": 79.6,
        "charging": False,
        "moving": True,
    }
    fast = _plain_native(item, NOW + dt.timedelta(days=1))
    assert fast is not None and fast == parse_native(item)
    assert fast.heading_deg == 1.0 and fast.battery_pct == 80
    assert fast.fix_time == dt.datetime(2026, 11, 25, 12, 59, 58, 250000, tzinfo=dt.UTC)
