"""Each adapter on recorded payloads: parse (pure) and normalize onto scan types and the
reason taxonomy; malformed bodies name the JSON path."""

from __future__ import annotations

import datetime as dt

import pytest

from carriers.feeds.adapters import (
    ADAPTERS,
    config_problems,
    mapping_for,
    normalize,
)
from carriers.feeds.errors import PayloadError
from tests.carrier_feeds.conftest import recorded

SANTIAGO = dt.timezone(dt.timedelta(hours=-3))


def _normalized(adapter, payload, config=None):
    config = config or {}
    events = ADAPTERS[adapter].parse(payload, config=config)
    mapping = mapping_for(adapter, config)
    return events, [normalize(e, mapping) for e in events]


def test_aftership_delivered_takes_the_latest_checkpoint():
    events, normalized = _normalized("aftership", recorded("aftership_delivered.json"))
    assert len(events) == 1
    event = events[0]
    assert event.event_id == "6b1f1c33-6a7b-4b0e-9d5a-3a0d51a8e001"
    assert event.barcode == "AF-0001"
    assert event.carrier_status_code == "Delivered_001"
    assert event.carrier_reason_code == ""
    assert event.occurred_at == dt.datetime(2026, 11, 20, 13, 32, tzinfo=SANTIAGO)
    assert event.location == (-71.2489, -29.9045)  # AfterShip sends [lat, lon]
    assert event.note == "Delivered, signed by the recipient"
    assert normalized[0].scan_type == "delivered"
    assert not normalized[0].flagged


def test_aftership_failed_attempt_reads_local_time_in_the_feed_zone():
    config = {"timezone": "America/Santiago"}
    events, normalized = _normalized("aftership", recorded("aftership_attempt_failed.json"), config)
    assert events[0].carrier_reason_code == "AttemptFail_002"
    assert events[0].occurred_at.utcoffset() == dt.timedelta(hours=-3)  # summer time in Chile
    assert (normalized[0].scan_type, normalized[0].reason_code) == ("attempt_failed", "not_home")


def test_aftership_subtag_falls_back_to_its_tag_and_unknown_ones_are_flagged():
    payload = recorded("aftership_delivered.json")
    payload["msg"]["subtag"] = "Delivered_099"
    _events, normalized = _normalized("aftership", payload)
    assert normalized[0].scan_type == "delivered" and not normalized[0].flagged

    events, normalized = _normalized("aftership", recorded("aftership_unknown_subtag.json"))
    assert events[0].carrier_status_code == "HeldAtDepot_001"
    assert events[0].occurred_at == dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC)  # from ts
    assert normalized[0].flagged and normalized[0].scan_type is None


def test_aftership_exception_reasons_map_onto_the_taxonomy():
    payload = recorded("aftership_delivered.json")
    cases = {
        "Exception_003": ("attempt_failed", "refused"),
        "Exception_007": ("attempt_failed", "address_not_found"),
        "Exception_012": ("exception", "damaged"),
        "Exception_013": ("exception", "lost"),
        "Exception_004": ("exception", "customs"),
        "Exception_011": ("returned", ""),
    }
    for subtag, expected in cases.items():
        payload["msg"]["tag"] = "Exception"
        payload["msg"]["subtag"] = subtag
        _events, normalized = _normalized("aftership", payload)
        assert (normalized[0].scan_type, normalized[0].reason_code) == expected, subtag
    payload["msg"]["subtag"] = "Exception_777"
    _events, normalized = _normalized("aftership", payload)
    assert normalized[0].scan_type == "exception"
    assert normalized[0].flagged and normalized[0].reason_code == "unknown"


def test_aftership_only_reads_tracking_updates():
    payload = recorded("aftership_delivered.json")
    payload["event"] = "edd_revise"
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["aftership"].parse(payload, config={})
    assert caught.value.path == "event"
    del payload["msg"]["tracking_number"]
    payload["event"] = "tracking_update"
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["aftership"].parse(payload, config={})
    assert caught.value.path == "msg.tracking_number"


def test_native_batch():
    events, normalized = _normalized("native", recorded("native_batch.json"))
    assert [e.event_id for e in events] == ["nat-1", "nat-2", "nat-3"]
    assert [n.scan_type for n in normalized] == ["out_for_delivery", "attempt_failed", "delivered"]
    assert normalized[1].reason_code == "not_home"
    assert events[1].location == (-71.34, -29.95)
    assert events[2].reference == "ORD-NAT-0002" and events[2].barcode == ""


def test_native_errors_name_the_json_path():
    payload = recorded("native_batch.json")
    payload["events"][2]["occurred_at"] = "yesterday"
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["native"].parse(payload, config={})
    assert caught.value.path == "events[2].occurred_at"
    payload["events"][2]["occurred_at"] = "2026-11-20T11:00:00"  # no offset
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["native"].parse(payload, config={})
    assert caught.value.path == "events[2].occurred_at"
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["native"].parse({"events": {"a": 1}}, config={})
    assert caught.value.path == "events"
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["native"].parse([1, 2], config={})
    assert caught.value.path == "$"


def test_native_unknown_status_is_flagged_not_refused():
    payload = {
        "events": [{"barcode": "X", "status": "teleported", "occurred_at": "2026-11-20T10:00:00Z"}]
    }
    _events, normalized = _normalized("native", payload)
    assert normalized[0].flagged and normalized[0].scan_type is None


def test_generic_json_follows_the_configured_paths_and_maps():
    config = recorded("generic_json_config.json")
    assert config_problems("generic_json", config) == {}
    events, normalized = _normalized("generic_json", recorded("generic_json_payload.json"), config)
    assert [e.event_id for e in events] == ["g-1", "g-2", "g-3"]
    assert [n.scan_type for n in normalized] == [None, "out_for_delivery", "attempt_failed"]
    assert [n.flagged for n in normalized] == [False, False, False]  # LBL: known, no scan
    assert normalized[2].reason_code == "refused"
    assert events[1].location == (-71.25, -29.91)
    assert events[1].occurred_at.utcoffset() == dt.timedelta(hours=-3)
    payload = recorded("generic_json_payload.json")
    payload["data"]["events"][1]["parcel"] = {}
    with pytest.raises(PayloadError) as caught:
        ADAPTERS["generic_json"].parse(payload, config=config)
    assert caught.value.path == "data.events[1].parcel.id"


def test_generic_json_config_is_checked_on_save():
    problems = config_problems(
        "generic_json",
        {
            "fields": {"barcode": "p.id", "colour": "x"},
            "status_map": {"OK": "teleported"},
            "reason_map": {"R": "bored"},
            "timezone": "Mars/Olympus",
        },
    )
    assert set(problems) == {
        "config.fields.colour",
        "config.fields.status",
        "config.fields.occurred_at",
        "config.status_map.OK",
        "config.reason_map.R",
        "config.timezone",
    }
    assert config_problems("nope", {}) == {
        "adapter": ["Choose one of: native, generic_json, aftership."]
    }
    assert "config.fields" in config_problems("generic_json", {})
