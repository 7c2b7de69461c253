"""Device protocols with requests shaped like the real clients send them: OsmAnd (query and
form), Traccar Client 9+ JSON (single, array, -1 unknowns), OwnTracks HTTP (location and the
message types it must ignore), GPX import (API and command). The device protocols are sent
through the real ASGI application, the only implementation."""

from __future__ import annotations

import base64
import datetime as dt
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from control_tower.tenancy.roles import Role
from tests.tracking.asgi_client import AsgiClient
from tracking.ingest.fixes import KMH_TO_MPS, KNOTS_TO_MPS
from tracking.models import PingFlag, PingSource

# The device protocol paths are answered by the ASGI application (tracking/ingest/fast.py),
# which writes through its own connection: the rows must be committed for it to see them.
pytestmark = pytest.mark.django_db(transaction=True)

GPX_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "gpx"
COLUMNS = (
    "fix_time, event_id, ST_Y(location) AS lat, ST_X(location) AS lon, accuracy_m, speed_mps, "
    "heading_deg, altitude_m, battery_pct, charging, moving, mock, source, flags, attributes"
)


def stored(device) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {COLUMNS} FROM tracking_ping WHERE device_id = %s ORDER BY fix_time",
            [device.pk],
        )
        names = [c.name for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:  # Django leaves jsonb as text on raw cursors
        row["attributes"] = json.loads(row["attributes"])
    return rows


@pytest.fixture
def device(tenant, device_for):
    return device_for(tenant, kind="traccar_client")


# ---------------------------------------------------------------------------------------------
# OsmAnd
# ---------------------------------------------------------------------------------------------


def test_osmand_query_string_as_traccar_documents_it(device):
    dev, token = device
    response = AsgiClient().get(
        f"/ingest/osmand/{token}/",
        {
            "id": "48241179",
            "lat": "-29.9045",
            "lon": "-71.2489",
            "timestamp": "1795608000",
            "speed": "10",
            "bearing": "370",
            "altitude": "30",
            "accuracy": "8",
            "batt": "77",
            "charge": "true",
            "ignition": "true",
            "driverUniqueId": "D-7",
        },
    )
    assert response.status_code == 200 and response.content == b""
    [row] = stored(dev)
    assert row["fix_time"] == dt.datetime.fromtimestamp(1795608000, tz=dt.UTC)
    assert (row["lat"], row["lon"]) == (-29.9045, -71.2489)
    assert row["speed_mps"] == pytest.approx(10 * KNOTS_TO_MPS)  # knots → m/s
    assert row["heading_deg"] == 10  # normalized
    assert (row["altitude_m"], row["accuracy_m"], row["battery_pct"]) == (30, 8, 77)
    assert row["charging"] is True and row["source"] == PingSource.OSMAND
    assert row["attributes"] == {
        "device_id": "48241179",
        "ignition": "true",
        "driverUniqueId": "D-7",
    }


def test_osmand_form_body_location_pair_and_millisecond_timestamp(device):
    dev, token = device
    response = AsgiClient().post(
        f"/ingest/osmand/{token}/",
        {"deviceid": "7", "location": "-29.95,-71.33", "timestamp": "1795608000123"},
    )
    assert response.status_code == 200
    [row] = stored(dev)
    assert (row["lat"], row["lon"]) == (-29.95, -71.33)
    assert row["fix_time"] == dt.datetime(2026, 11, 25, 12, 0, 0, 123000, tzinfo=dt.UTC)


def test_osmand_iso_time_missing_time_and_invalid_fix(device):
    dev, token = device
    client = AsgiClient()
    client.get(
        f"/ingest/osmand/{token}/",
        {"id": "7", "lat": "-29.9", "lon": "-71.2", "timestamp": "2026-11-25T10:00:00Z"},
    )
    before = timezone.now()
    client.get(f"/ingest/osmand/{token}/", {"id": "7", "lat": "-29.9", "lon": "-71.2"})
    client.get(
        f"/ingest/osmand/{token}/",
        {"id": "7", "lat": "-29.91", "lon": "-71.2", "timestamp": "1795500000", "valid": "false"},
    )
    assert len(stored(dev)) == 3
    invalid = next(row for row in stored(dev) if row["lat"] == -29.91)
    assert invalid["fix_time"] == dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)
    assert invalid["flags"] & PingFlag.INVALID
    times = sorted(row["fix_time"] for row in stored(dev) if row["lat"] == -29.9)
    assert dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC) in times
    server_time = [t for t in times if t != dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)][0]
    assert abs(server_time - before) < dt.timedelta(seconds=5)


def test_osmand_replay_is_200_and_stores_once(device):
    dev, token = device
    params = {"id": "7", "lat": "-29.9", "lon": "-71.2", "timestamp": "1795608000"}
    assert [AsgiClient().get(f"/ingest/osmand/{token}/", params).status_code for _ in range(3)] == [
        200,
        200,
        200,
    ]
    assert len(stored(dev)) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lat": "-29.9", "lon": "-71.2"}, "id"),
        ({"id": "7", "lat": "-29.9"}, "lon"),
        ({"id": "7", "lat": "north", "lon": "-71.2"}, "lat"),
        ({"id": "7", "location": "-29.9"}, "location"),
        ({"id": "7", "lat": "-29.9", "lon": "-71.2", "timestamp": "soon"}, "timestamp"),
    ],
)
def test_osmand_malformed_is_400_naming_the_field(device, params, field):
    dev, token = device
    response = AsgiClient().get(f"/ingest/osmand/{token}/", params)
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert stored(dev) == []


def test_osmand_unknown_or_revoked_token_is_404_and_reveals_nothing(
    tenant, other_tenant, device, device_for
):
    from carriers.services import device_revoke
    from control_tower.tenancy.scope import organization_scope

    dev, token = device
    params = {"id": "7", "lat": "-29.9", "lon": "-71.2"}
    unknown = AsgiClient().get("/ingest/osmand/ctd_0123456789_abcdef/", params)
    theirs, their_token = device_for(other_tenant)
    with organization_scope(other_tenant.organization):
        device_revoke(device=theirs)
    revoked = AsgiClient().get(f"/ingest/osmand/{their_token}/", params)
    assert unknown.status_code == revoked.status_code == 404
    assert unknown.content == revoked.content


# ---------------------------------------------------------------------------------------------
# Traccar Client 9+ JSON
# ---------------------------------------------------------------------------------------------

TRACCAR_FIX = {
    "location": {
        "timestamp": "2026-11-25T10:45:12.862Z",
        "coords": {
            "latitude": -29.9045,
            "longitude": -71.2489,
            "accuracy": 5,
            "speed": -1,
            "heading": -1,
            "altitude": 5,
        },
        "is_moving": False,
        "odometer": 0,
        "event": "motionchange",
        "battery": {"level": 1, "is_charging": False},
        "activity": {"type": "still"},
        "extras": {},
    },
    "device_id": "48241179",
}


def test_traccar_json_single_with_unknowns(device):
    dev, token = device
    response = AsgiClient().post(
        f"/ingest/osmand/{token}/", json.dumps(TRACCAR_FIX), content_type="application/json"
    )
    assert response.status_code == 200
    [row] = stored(dev)
    assert row["fix_time"] == dt.datetime(2026, 11, 25, 10, 45, 12, 862000, tzinfo=dt.UTC)
    assert row["speed_mps"] is None and row["heading_deg"] is None  # -1 = unknown
    assert row["battery_pct"] == 100 and row["charging"] is False and row["moving"] is False
    assert row["source"] == PingSource.TRACCAR_JSON
    assert row["attributes"] == {
        "device_id": "48241179",
        "event": "motionchange",
        "odometer": 0,
        "activity": "still",
    }


def test_traccar_json_array_batch_and_replay(device):
    dev, token = device
    batch = []
    for i in range(3):
        item = json.loads(json.dumps(TRACCAR_FIX))
        item["location"]["timestamp"] = f"2026-11-25T10:45:{10 + i * 5}.000Z"
        item["location"]["coords"].update(latitude=-29.9045 + i * 0.0002, speed=6.5, heading=90)
        item["location"]["battery"]["level"] = 0.42
        item["location"]["is_moving"] = True
        batch.append(item)
    client = AsgiClient()
    for _ in range(2):
        response = client.post(
            f"/ingest/osmand/{token}/", json.dumps(batch), content_type="application/json"
        )
        assert response.status_code == 200
    rows = stored(dev)
    assert len(rows) == 3
    assert {r["speed_mps"] for r in rows} == {6.5} and {r["battery_pct"] for r in rows} == {42}


def test_traccar_json_errors_name_the_item_and_field(device):
    dev, token = device
    bad = json.loads(json.dumps(TRACCAR_FIX))
    bad["location"]["coords"]["latitude"] = 95
    response = AsgiClient().post(
        f"/ingest/osmand/{token}/", json.dumps([TRACCAR_FIX, bad]), content_type="application/json"
    )
    assert response.status_code == 400
    assert "1.lat" in response.json()["fields"]
    assert stored(dev) == []
    broken = AsgiClient().post(
        f"/ingest/osmand/{token}/", "{not json", content_type="application/json"
    )
    assert broken.status_code == 400 and "body" in broken.json()["fields"]


def test_traccar_mock_location_is_flagged(device):
    dev, token = device
    item = json.loads(json.dumps(TRACCAR_FIX))
    item["location"]["mock"] = True
    AsgiClient().post(f"/ingest/osmand/{token}/", json.dumps(item), content_type="application/json")
    assert stored(dev)[0]["flags"] & PingFlag.MOCK


# ---------------------------------------------------------------------------------------------
# OwnTracks
# ---------------------------------------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def owntracks(payload, auth):
    return AsgiClient().post(
        "/ingest/owntracks/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )


OWNTRACKS_LOCATION = {
    "_type": "location",
    "lat": -29.9533,
    "lon": -71.3394,
    "tst": 1795608000,
    "acc": 12,
    "alt": 21,
    "vel": 36,
    "cog": 180,
    "batt": 64,
    "bs": 2,
    "tid": "rk",
    "t": "u",
    "created_at": 1795608001,
    "conn": "m",
}


def test_owntracks_location_replies_an_empty_array(device):
    dev, token = device
    response = owntracks(OWNTRACKS_LOCATION, basic("rodrigo", token))
    assert response.status_code == 200 and response.json() == []
    [row] = stored(dev)
    assert row["speed_mps"] == pytest.approx(36 * KMH_TO_MPS)  # km/h → m/s
    assert (row["heading_deg"], row["accuracy_m"], row["battery_pct"]) == (180, 12, 64)
    assert row["charging"] is True and row["source"] == PingSource.OWNTRACKS
    assert row["attributes"] == {"tid": "rk", "t": "u", "conn": "m"}
    # The token may also be the user name (some set-ups put it there); replays are fine.
    assert owntracks(OWNTRACKS_LOCATION, basic(token, "")).status_code == 200
    assert len(stored(dev)) == 1


@pytest.mark.parametrize(
    "message",
    [
        {"_type": "lwt", "tst": 1795608000},
        {
            "_type": "transition",
            "event": "enter",
            "desc": "Hub",
            "tst": 1795608000,
            "lat": -29.9,
            "lon": -71.2,
            "acc": 10,
            "t": "c",
        },
        {
            "_type": "waypoint",
            "desc": "Hub",
            "lat": -29.9,
            "lon": -71.2,
            "rad": 100,
            "tst": 1795600000,
        },
        {"_type": "card", "name": "Rodrigo"},
        {"_type": "status", "android": {"hib": 1}},
    ],
)
def test_owntracks_other_message_types_are_acknowledged_and_ignored(device, message):
    dev, token = device
    response = owntracks(message, basic("u", token))
    assert response.status_code == 200 and response.json() == []
    assert stored(dev) == []


def test_owntracks_bad_credentials_401(device):
    dev, _token = device
    for auth in (basic("u", "wrong"), "Bearer x", "Basic !!!"):
        response = owntracks(OWNTRACKS_LOCATION, auth)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert stored(dev) == []


def test_owntracks_location_without_time_is_400(device):
    dev, token = device
    message = {k: v for k, v in OWNTRACKS_LOCATION.items() if k != "tst"}
    response = owntracks(message, basic("u", token))
    assert response.status_code == 400 and "tst" in response.json()["fields"]


# ---------------------------------------------------------------------------------------------
# GPX
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def long_retention(tenant):
    # The sample tracks are from 2009 and 2020: keep them out of the "too old" flag.
    tenant.organization.ping_retention_days = 3650 * 2
    tenant.organization.save()


def upload(client, data: bytes, **fields):
    return client.post(
        "/api/v1/ingest/gpx",
        {"file": SimpleUploadedFile("track.gpx", data, "application/gpx+xml"), **fields},
        format="multipart",
    )


def test_gpx_upload_of_a_real_car_track(tenant, device, api_client_for, long_retention):
    dev, _ = device
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    data = (GPX_DIR / "around-visnjan-with-car.gpx").read_bytes()
    response = upload(dispatcher, data, device=dev.pk)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["received"] == 104 and body["stored"] == 104 and body["position_moved"]
    rows = stored(dev)
    assert rows[0]["fix_time"] == dt.datetime(2020, 12, 18, 6, 15, 50, tzinfo=dt.UTC)
    assert rows[0]["altitude_m"] == 211.15 and rows[0]["source"] == PingSource.GPX
    assert upload(dispatcher, data, device=dev.pk).json()["duplicates"] == 104


def test_gpx_speed_extension_and_device_token_upload(device, device_client_for, long_retention):
    dev, token = device
    response = upload(device_client_for(token), (GPX_DIR / "track_with_speed.gpx").read_bytes())
    assert response.status_code == 200
    assert [r["speed_mps"] for r in stored(dev)] == [1.2, 2.2, 3.2]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"<gpx><trk><trkseg><trkpt lat='1' lon='1'></trkpt></trkseg></trk></gpx>",
            "Track point 0",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><gpx>&lol;</gpx>',
            "DTDs and entities are not allowed",
        ),
        (b"<kml></kml>", "Not a GPX document"),
        (b"<gpx><trk>", "Not well-formed XML"),
        (b"<gpx></gpx>", "No track points"),
    ],
)
def test_gpx_refusals_are_explained(tenant, device, api_client_for, data, message):
    dev, _ = device
    response = upload(api_client_for(tenant.user(Role.DISPATCHER)), data, device=dev.pk)
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert stored(dev) == []


def test_gpx_limits(tenant, device, api_client_for, settings):
    dev, _ = device
    client = api_client_for(tenant.user(Role.DISPATCHER))
    data = (GPX_DIR / "around-visnjan-with-car.gpx").read_bytes()
    settings.GPX_MAX_POINTS = 10
    assert "More than 10 track points" in upload(client, data, device=dev.pk).json()["detail"]
    settings.GPX_MAX_BYTES = 100
    assert upload(client, data, device=dev.pk).status_code == 400
    assert stored(dev) == []


def test_gpx_device_must_be_ours(tenant, other_tenant, device_for, api_client_for, api_key_for):
    theirs, _ = device_for(other_tenant)
    data = (GPX_DIR / "track_with_speed.gpx").read_bytes()
    for client in (
        api_client_for(tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(tenant)),
    ):
        response = upload(client, data, device=theirs.pk)
        assert response.status_code == 400 and "device" in response.json()["fields"]
    assert stored(theirs) == []
    # Roles without tracking write cannot import at all.
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    assert upload(ops, data, device=theirs.pk).status_code == 403


def test_import_gpx_command(tenant, device, long_retention):
    dev, _ = device
    out = StringIO()
    call_command(
        "import_gpx",
        "--org",
        tenant.organization.slug,
        "--device",
        str(dev.pk),
        "--no-progress",
        str(GPX_DIR / "around-visnjan-with-car.gpx"),
        stdout=out,
    )
    assert "104 points, 104 stored, 0 already there, 0 flagged" in out.getvalue()
    with pytest.raises(CommandError, match="no device"):
        call_command(
            "import_gpx",
            "--org",
            tenant.organization.slug,
            "--device",
            "nope",
            str(GPX_DIR / "track_with_speed.gpx"),
            stdout=out,
        )
