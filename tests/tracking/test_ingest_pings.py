"""GPS ingest through the native batch API: storage, idempotency, ordering, outliers, auth,
reads, durability without Redis, and live pushes. Real PostGIS, real channels_redis."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carriers.services import device_revoke
from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from tracking.models import DevicePosition, PingFlag

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/pings"
BASE = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def fix(seconds: int, *, lat=-29.9000, lon=-71.2500, **extra) -> dict:
    return {
        "time": (BASE + dt.timedelta(seconds=seconds)).isoformat(),
        "lat": lat,
        "lon": lon,
        "accuracy": 5,
        "speed": 8,
        **extra,
    }


def track(n: int, *, step_s=5, step_deg=0.0003) -> list[dict]:
    """A plausible drive north: ~33 m every 5 s (~6.7 m/s)."""
    return [fix(i * step_s, lat=-29.9 + i * step_deg, event_id=f"e{i}") for i in range(n)]


def post(client, body):
    return client.post(URL, json.dumps(body), content_type="application/json")


def rows(device) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT fix_time, event_id, flags, ST_Y(location), ST_X(location) FROM tracking_ping "
            "WHERE device_id = %s ORDER BY fix_time, event_id",
            [device.pk],
        )
        return cursor.fetchall()


def position(device):
    with dangerously_all_organizations():
        return DevicePosition.dangerously_unscoped.filter(device=device).first()


@pytest.fixture
def device(tenant, device_for):
    return device_for(tenant)


@pytest.fixture
def phone(device, device_client_for):
    _device, token = device
    return device_client_for(token)


@pytest.fixture(autouse=True)
def _now_is_after_the_track(monkeypatch):
    # The fixed track is "now + a minute" so that none of it is in the future.
    monkeypatch.setattr(timezone, "now", lambda: BASE + dt.timedelta(minutes=60))


def test_a_batch_is_stored_and_moves_the_position(device, phone):
    dev, _ = device
    response = post(phone, track(10))
    assert response.status_code == 200, response.content
    assert response.json() == {
        "received": 10,
        "stored": 10,
        "duplicates": 0,
        "flagged": 0,
        "position_moved": True,
    }
    stored = rows(dev)
    assert len(stored) == 10 and all(flags == 0 for _t, _e, flags, _y, _x in stored)
    last = position(dev)
    assert last.fix_time == BASE + dt.timedelta(seconds=45)
    assert last.location.y == pytest.approx(-29.9 + 9 * 0.0003)
    assert last.organization_id == dev.organization_id


def test_envelope_form_and_epoch_milliseconds(device, phone):
    dev, _ = device
    millis = int((BASE.timestamp()) * 1000)
    response = post(phone, {"pings": [{"time": millis, "lat": -29.9, "lon": -71.25}]})
    assert response.status_code == 200
    assert rows(dev)[0][0] == BASE


def test_a_replay_changes_nothing_and_is_still_2xx(device, phone):
    dev, _ = device
    post(phone, track(5))
    before = (rows(dev), position(dev).fix_time)
    replay = post(phone, track(5))
    assert replay.status_code == 200
    assert replay.json()["stored"] == 0 and replay.json()["duplicates"] == 5
    assert (rows(dev), position(dev).fix_time) == before


def test_same_time_different_event_ids_are_two_fixes_and_repeats_in_a_request_count_once(
    device, phone
):
    dev, _ = device
    body = [fix(0, event_id="a"), fix(0, event_id="b"), fix(0, event_id="a")]
    assert post(phone, body).json()["received"] == 2
    assert [r[1] for r in rows(dev)] == ["a", "b"]


def test_one_malformed_fix_rejects_the_whole_batch_naming_index_and_field(device, phone):
    dev, _ = device
    body = track(5)
    body[3]["lat"] = 123
    body[4]["time"] = "yesterday"
    response = post(phone, body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "validation_error"
    assert payload["fields"]["pings"] == {
        "3": {"lat": ["Must be between -90 and 90."]},
        "4": {"time": ["Use epoch seconds, epoch milliseconds or ISO-8601, not 'yesterday'."]},
    }
    assert "nothing was stored" in payload["detail"]
    assert rows(dev) == [] and position(dev) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "pings"),
        ({"pings": "x"}, "pings"),
        ([{"lat": -29.9, "lon": -71.2}], "time"),
        ([{"time": "2026-11-25T12:00:00Z", "lat": -29.9}], "lon"),
        ([{"time": "2026-11-25T12:00:00Z", "lat": 0, "lon": 0}], "lat"),
        ([{"time": "2026-11-25T12:00:00Z", "lat": -29.9, "lon": -71.2, "sped": 3}], "sped"),
        ([{"time": "2026-11-25T12:00:00Z", "lat": -29.9, "lon": -71.2, "battery": 140}], "battery"),
        ([{"time": "2026-11-25T12:00:00Z", "lat": "x", "lon": -71.2}], "lat"),
        (["not an object"], "non_field_errors"),
    ],
)
def test_bad_input_is_named(phone, body, field):
    response = post(phone, body)
    assert response.status_code == 400
    fields = response.json()["fields"]
    named = fields.get("pings", {}).get("0", {}) if field != "pings" else fields
    assert field in named, fields


def test_batch_size_limit(phone, settings):
    settings.PING_BATCH_MAX = 3
    response = post(phone, track(4))
    assert response.status_code == 400
    assert response.json()["fields"]["pings"] == ["At most 3 fixes per request."]


def test_late_fixes_are_stored_but_never_move_the_position_back(device, phone):
    dev, _ = device
    fixes = track(10)
    post(phone, fixes[5:])
    newest = position(dev).fix_time
    late = post(phone, fixes[:5])
    assert late.json()["stored"] == 5 and late.json()["position_moved"] is False
    assert position(dev).fix_time == newest
    assert len(rows(dev)) == 10


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(range(8)), split=st.integers(min_value=1, max_value=7))
def test_any_arrival_order_gives_the_same_last_position(device, phone, order, split):
    """Property: however a batch is permuted and split into two requests, the stored rows and
    the last position are the same."""
    dev, _ = device
    with connection.cursor() as cursor:  # each example starts from an empty device
        cursor.execute("DELETE FROM tracking_ping WHERE device_id = %s", [dev.pk])
        cursor.execute("DELETE FROM tracking_deviceposition WHERE device_id = %s", [dev.pk])
    fixes = track(8)
    shuffled = [fixes[i] for i in order]
    post(phone, shuffled[:split])
    post(phone, shuffled[split:])
    last = position(dev)
    assert last.fix_time == BASE + dt.timedelta(seconds=35)
    assert last.location.y == pytest.approx(-29.9 + 7 * 0.0003)
    assert len(rows(dev)) == 8


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        ({"accuracy": 250}, PingFlag.POOR_ACCURACY),
        ({"mock": True}, PingFlag.MOCK),
        ({"lat": -29.0}, PingFlag.IMPOSSIBLE_SPEED),  # 100 km in 5 s
    ],
)
def test_outliers_are_stored_flagged_and_do_not_move_the_map(device, phone, extra, flag):
    dev, _ = device
    post(phone, track(3))
    before = position(dev)
    outlier = fix(15, **{"lat": -29.9 + 3 * 0.0003, **extra})
    response = post(phone, [outlier])
    assert response.json()["flagged"] == 1 and response.json()["position_moved"] is False
    assert rows(dev)[-1][2] & flag
    after = position(dev)
    assert (after.fix_time, after.location) == (before.fix_time, before.location)


def test_future_and_expired_fixes_are_flagged(device, phone, org):
    dev, _ = device
    now = timezone.now()
    future = {"time": (now + dt.timedelta(hours=2)).isoformat(), "lat": -29.9, "lon": -71.25}
    old = {
        "time": (now - dt.timedelta(days=org.ping_retention_days + 1)).isoformat(),
        "lat": -29.9,
        "lon": -71.25,
    }
    response = post(phone, [future, old])
    assert response.json()["flagged"] == 2
    flags = sorted(r[2] for r in rows(dev))
    assert flags == sorted([PingFlag.FUTURE, PingFlag.TOO_OLD])
    assert position(dev) is None


def test_stationary_jitter_keeps_the_marker_but_refreshes_the_time(device, phone):
    dev, _ = device
    post(phone, [fix(0, speed=0, accuracy=15)])
    first = position(dev)
    response = post(phone, [fix(30, lat=-29.90005, speed=0, accuracy=15)])  # ~5.5 m away
    assert response.json()["flagged"] == 0  # jitter is not an outlier, it is a sign of life
    assert rows(dev)[-1][2] == PingFlag.STATIONARY_JITTER
    after = position(dev)
    assert after.location == first.location
    assert after.fix_time == BASE + dt.timedelta(seconds=30)


def test_a_long_jump_after_a_long_gap_is_plausible(device, phone):
    post(phone, [fix(0)])
    response = post(phone, [fix(3600, lat=-29.7)])  # 22 km in an hour: plausible
    assert response.json()["position_moved"] is True


def test_device_last_seen_is_recorded(device, phone):
    dev, _ = device
    post(phone, track(2))
    dev.refresh_from_db()
    assert dev.last_seen_at == timezone.now()


# ---------------------------------------------------------------------------------------------
# Who may post
# ---------------------------------------------------------------------------------------------


def test_without_a_device_token_nothing_is_accepted(tenant, device, api_client_for, api_key_for):
    dev, token = device
    anonymous = api_client_for()
    assert post(anonymous, track(1)).status_code == 401
    # A person or an API key is not a device.
    assert post(api_client_for(tenant.user(Role.OWNER)), track(1)).status_code == 401
    assert post(api_client_for(key=api_key_for(tenant)), track(1)).status_code == 401
    assert rows(dev) == []


def test_unknown_and_revoked_tokens_get_the_same_401(device, device_client_for, tenant):
    dev, token = device
    wrong_secret = token[:-4] + "AAAA"
    for bad in (wrong_secret, "ctd_0123456789_nope", "garbage"):
        response = post(device_client_for(bad), track(1))
        assert response.status_code == 401
        assert response.json()["detail"] == "Unknown or revoked device token."
    with organization_scope(tenant.organization):
        device_revoke(device=dev)
    response = post(device_client_for(token), track(1))
    assert response.status_code == 401
    assert response.json()["detail"] == "Unknown or revoked device token."
    assert rows(dev) == []


def test_the_token_decides_the_organization(tenant, other_tenant, device_for, device_client_for):
    ours, our_token = device_for(tenant)
    theirs, their_token = device_for(other_tenant)
    post(device_client_for(their_token), track(3))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT organization_id, device_id FROM tracking_ping WHERE device_id IN "
            "(%s, %s)",
            [ours.pk, theirs.pk],
        )
        assert cursor.fetchall() == [(other_tenant.organization.pk, theirs.pk)]


# ---------------------------------------------------------------------------------------------
# Reads: positions and pings, and their tenancy
# ---------------------------------------------------------------------------------------------


def test_positions_and_pings_are_readable_by_the_organization_only(
    tenant, other_tenant, device, phone, api_client_for, api_key_for
):
    dev, _ = device
    post(phone, track(4) + [fix(25, accuracy=500)])
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    positions = dispatcher.get("/api/v1/positions/").json()
    assert [p["device"] for p in positions["results"]] == [dev.pk]
    assert positions["results"][0]["location"]["coordinates"][1] == pytest.approx(-29.8991)
    assert dispatcher.get(f"/api/v1/positions/{dev.pk}/").status_code == 200
    pings = dispatcher.get(f"/api/v1/pings/?device={dev.pk}").json()
    assert pings["count"] == 5 and pings["results"][-1]["flags"] == ["poor_accuracy"]
    good = dispatcher.get(f"/api/v1/pings/?device={dev.pk}&good=true").json()
    assert good["count"] == 4
    window = dispatcher.get(
        f"/api/v1/pings/?device={dev.pk}&since=2026-11-25T12:00:05Z&until=2026-11-25T12:00:15Z"
    ).json()
    assert [dt.datetime.fromisoformat(p["fix_time"]) for p in window["results"]] == [
        BASE + dt.timedelta(seconds=5),
        BASE + dt.timedelta(seconds=10),
    ]
    # Another organization: nothing, whoever asks.
    for client in (
        api_client_for(other_tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(other_tenant)),
    ):
        assert client.get("/api/v1/positions/").json()["count"] == 0
        assert client.get(f"/api/v1/positions/{dev.pk}/").status_code == 404
        assert client.get(f"/api/v1/pings/?device={dev.pk}").json()["count"] == 0


def test_pings_need_a_device_filter_and_a_readable_role(tenant, device, phone, api_client_for):
    dev, _ = device
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    response = dispatcher.get("/api/v1/pings/")
    assert response.status_code == 400 and "device" in response.json()["fields"]
    assert dispatcher.get(f"/api/v1/pings/?device={dev.pk}&since=soon").status_code == 400
    driver = api_client_for(tenant.user(Role.DRIVER))
    assert driver.get("/api/v1/positions/").status_code == 403
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    assert ops.get("/api/v1/positions/").status_code == 200


def test_carrier_users_see_only_their_carrier_devices(
    tenant, device_for, device_client_for, api_client_for
):
    from tests.factories import CarrierFactory

    other_carrier = CarrierFactory(organization=tenant.organization)
    mine, my_token = device_for(tenant)
    foreign, foreign_token = device_for(tenant, carrier=other_carrier)
    post(device_client_for(my_token), track(2))
    post(device_client_for(foreign_token), track(2))
    carrier_user = api_client_for(tenant.user(Role.CARRIER_USER))
    devices = [p["device"] for p in carrier_user.get("/api/v1/positions/").json()["results"]]
    assert devices == [mine.pk]
    assert carrier_user.get(f"/api/v1/pings/?device={foreign.pk}").json()["count"] == 0


def test_api_key_needs_the_tracking_scope(tenant, device, phone, api_client_for, api_key_for):
    post(phone, track(1))
    narrow = api_client_for(key=api_key_for(tenant, scopes=[Scope.SHIPMENTS_READ]))
    assert narrow.get("/api/v1/positions/").status_code == 403
    wide = api_client_for(key=api_key_for(tenant, scopes=[Scope.TRACKING_READ]))
    assert wide.get("/api/v1/positions/").json()["count"] == 1


# ---------------------------------------------------------------------------------------------
# Durability and live pushes
# ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_accepted_ping_is_durable_when_redis_is_down(device, phone, settings):
    """Redis (channel layer and Celery broker) unreachable: the request still succeeds and
    the rows are there; only the live push is lost (and logged)."""
    from channels.layers import channel_layers

    dev, _ = device
    dead = "redis://127.0.0.1:1/0"
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead]}}
    }
    channel_layers.backends.clear()
    try:
        response = post(phone, track(3))
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 200
    assert len(rows(dev)) == 3 and position(dev) is not None


@pytest.mark.django_db(transaction=True)
def test_a_new_position_is_pushed_to_the_organization_only(
    tenant, other_tenant, device, phone, device_for, device_client_for
):
    from carriers.models import Device
    from tests.factories import VehicleFactory
    from tests.portal.test_events_socket import communicator, session_cookie

    dev, _ = device
    # The console is keyed by vehicle (vehicles.moved, docs/REALTIME.md).
    vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    Device.dangerously_unscoped.filter(pk=dev.pk).update(vehicle=vehicle)
    _theirs, their_token = device_for(other_tenant)
    cookie = session_cookie(tenant.user(Role.DISPATCHER))

    async def run():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=5)  # hello
        await database_sync_to_async(post)(device_client_for(their_token), track(2))
        await database_sync_to_async(post)(phone, track(2))
        event = await socket.receive_json_from(timeout=5)  # a batch of one position
        assert event["type"] == "vehicles.moved"
        [item] = event["data"]["items"]
        assert item["id"] == vehicle.pk
        assert item["lat"] == pytest.approx(-29.8997)
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()

    async_to_sync(run)()
