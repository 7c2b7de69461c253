"""One validator for every device protocol: the same bounds (tracking/ingest/fixes.py BOUNDS),
strict numbers, clean strings; a bad value is a 400 naming the field and nothing is stored.
Position serializers (REST and live) never emit a non-finite number."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from portal.live import vehicle_moved_data
from tests.factories import VehicleFactory
from tests.tracking.asgi_client import AsgiClient
from tracking.ingest.fixes import BOUNDS, FixError
from tracking.ingest.gpx import GpxError, parse_gpx
from tracking.ingest.protocols import (
    parse_native,
    parse_osmand,
    parse_owntracks,
    parse_traccar_json,
)
from tracking.models import DevicePosition, Ping, PingFlag

NOW = int(timezone.now().timestamp()) - 600
ISO = dt.datetime.fromtimestamp(NOW, dt.UTC).isoformat()


def count(device) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_ping WHERE device_id = %s", [device.pk])
        return cursor.fetchone()[0]


def last_position(device):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_Y(location), speed_mps FROM tracking_deviceposition WHERE device_id = %s",
            [device.pk],
        )
        return cursor.fetchone()


def native(**extra) -> dict:
    return {"time": ISO, "lat": -29.9, "lon": -71.25, "accuracy": 5, **extra}


# ---------------------------------------------------------------------------------------------
# Native batch (REST API, Django)
# ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"speed": 1e308}, "speed"),
        ({"speed": 341}, "speed"),
        ({"altitude": 1e30}, "altitude"),
        ({"accuracy": -3}, "accuracy"),
        ({"battery": -5}, "battery"),
        ({"heading": 1e300}, "heading"),
        ({"lat": "1_0"}, "lat"),
        ({"lat": "\u0661\u0660"}, "lat"),  # Arabic-Indic "10"
        ({"lat": 10**400}, "lat"),
        ({"lat": "NaN"}, "lat"),
        ({"time": 1e20}, "time"),
        ({"time": "1999-12-31T23:59:59Z"}, "time"),
        ({"time": "2101-01-01T00:00:00Z"}, "time"),
        ({"event_id": "a\u0000b"}, "event_id"),
        ({"event_id": "a\ud800b"}, "event_id"),
        ({"attributes": {"note": "nul \u0000 here"}}, "attributes"),
        ({"attributes": {"k\ud83d": 1}}, "attributes"),
    ],
)
def test_native_bad_values_are_400_naming_the_field_and_nothing_is_stored(
    tenant, device_for, device_client_for, extra, field
):
    device, token = device_for(tenant)
    body = json.dumps([native(event_id="good"), native(**extra)])
    response = device_client_for(token).post(
        "/api/v1/ingest/pings", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]["pings"]["1"]
    assert count(device) == 0


@pytest.mark.django_db
def test_a_huge_speed_never_becomes_the_last_position(tenant, device_for, device_client_for):
    """The reproduction: one fix with speed ~1e308 used to become the last position, then the
    console snapshot answered 500 and the socket pushed `"speed_kmh": Infinity`."""
    vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    device, token = device_for(tenant, vehicle=vehicle)
    phone = device_client_for(token)
    good = phone.post(
        "/api/v1/ingest/pings", json.dumps([native(speed=8)]), content_type="application/json"
    )
    assert good.status_code == 200
    later = (dt.datetime.fromisoformat(ISO) + dt.timedelta(seconds=5)).isoformat()
    bad = phone.post(
        "/api/v1/ingest/pings",
        json.dumps([native(time=later, lat=-29.9001, speed=1.7976931348623157e308)]),
        content_type="application/json",
    )
    assert bad.status_code == 400 and "speed" in bad.json()["fields"]["pings"]["0"]
    assert last_position(device) == (-29.9, 8.0)


@pytest.mark.django_db
def test_a_reported_speed_above_the_plausible_limit_is_flagged(
    tenant, device_for, device_client_for, settings
):
    device, token = device_for(tenant)
    response = device_client_for(token).post(
        "/api/v1/ingest/pings",
        json.dumps([native(speed=settings.PING_MAX_SPEED_MPS + 50)]),
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["flagged"] == 1
    with organization_scope(tenant.organization):
        assert Ping.objects.get(device=device).flags & PingFlag.IMPOSSIBLE_SPEED
    assert last_position(device) is None


# ---------------------------------------------------------------------------------------------
# OsmAnd, Traccar JSON, OwnTracks through the ASGI fast path
# ---------------------------------------------------------------------------------------------

OSMAND = {"id": "1", "lat": "-29.9", "lon": "-71.25", "timestamp": str(NOW), "speed": "10"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"speed": "1e308"}, "speed"),
        ({"speed": "inf"}, "speed"),
        ({"lat": "1_0"}, "lat"),
        ({"lat": "\uff11\uff10"}, "lat"),  # full-width "10"
        ({"lat": "-29." + "9" * 400}, "lat"),
        ({"batt": "-5"}, "batt"),
        ({"altitude": "1e30"}, "altitude"),
        ({"timestamp": "1e20"}, "timestamp"),
        ({"id": "dev\u0000ice"}, "id"),
        ({"note": "x\u0000"}, "note"),
    ],
)
def test_osmand_bad_values_are_400_naming_the_field(tenant, device_for, extra, field):
    device, token = device_for(tenant)
    response = AsgiClient().get(f"/ingest/osmand/{token}/", {**OSMAND, **extra})
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert count(device) == 0


@pytest.mark.django_db(transaction=True)
def test_a_huge_osmand_speed_is_refused_and_never_reaches_the_console(tenant, device_for):
    """The reproduction through the real ASGI application: a fix in knots ~1e308 used to become
    the last position and be pushed as `"speed_kmh": Infinity` (invalid JSON for the page)."""
    import httpx
    from asgiref.sync import async_to_sync

    from control_tower.asgi import application
    from tests.portal.test_events_socket import communicator, session_cookie
    from tracking.ingest import fast

    vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    device, token = device_for(tenant, vehicle=vehicle)
    cookie = session_cookie(tenant.user(Role.DISPATCHER))
    later = {**OSMAND, "timestamp": str(NOW + 5), "lat": "-29.9001", "speed": "1e308"}

    async def scenario():
        socket = communicator(cookie)
        connected, _ = await socket.connect()
        assert connected
        await socket.receive_json_from(timeout=5)  # hello
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            good = await c.get(f"/ingest/osmand/{token}/", params=OSMAND)
            first = await socket.receive_json_from(timeout=5)
            bad = await c.get(f"/ingest/osmand/{token}/", params=later)
        assert good.status_code == 200 and first["type"] == "vehicles.moved"
        [item] = first["data"]["items"]  # a batch of one position
        assert item["speed_kmh"] == 18.5
        assert bad.status_code == 400 and "speed" in bad.json()["fields"]
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        await fast.close_pools()

    async_to_sync(scenario)()
    assert last_position(device) == (-29.9, pytest.approx(10 * 1852 / 3600))


TRACCAR = {
    "location": {
        "timestamp": ISO,
        "coords": {"latitude": -29.9, "longitude": -71.25, "speed": 3, "accuracy": 5},
        "battery": {"level": 0.5},
        "odometer": 1200.5,
    },
    "device_id": "1",
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda loc: loc["coords"].update(speed=1e308), "0.coords.speed"),
        (lambda loc: loc["coords"].update(altitude=1e30), "0.coords.altitude"),
        (lambda loc: loc["battery"].update(level=-0.5), "0.battery.level"),
        (lambda loc: loc.update(odometer=1e30), "0.location.odometer"),
        (lambda loc: loc.update(timestamp=1e20), "0.location.timestamp"),
        (lambda loc: loc.update(extras={"k": "\ud800"}), "0.extras"),
    ],
)
def test_traccar_json_bad_values_are_400_naming_the_field(tenant, device_for, change, field):
    device, token = device_for(tenant)
    bad = json.loads(json.dumps(TRACCAR))
    change(bad["location"])
    body = json.dumps([bad, TRACCAR])
    response = AsgiClient().post(f"/ingest/osmand/{token}/", body, "application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert count(device) == 0


OWNTRACKS = {"_type": "location", "lat": -29.9, "lon": -71.25, "tst": NOW, "vel": 30}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (json.dumps({**OWNTRACKS, "alt": 1e30}), "alt"),
        (json.dumps({**OWNTRACKS, "tst": 1e20}), "tst"),
        (json.dumps({**OWNTRACKS, "vel": 1e308}), "vel"),
        (json.dumps({**OWNTRACKS, "batt": -3}), "batt"),
        (json.dumps({**OWNTRACKS, "tid": "r\u0000"}), "tid"),
        (json.dumps(OWNTRACKS).replace('"vel": 30', '"vel": NaN'), "body"),
    ],
)
def test_owntracks_bad_values_are_400_naming_the_field(tenant, device_for, body, field):
    import base64

    device, token = device_for(tenant)
    auth = "Basic " + base64.b64encode(f"rk:{token}".encode()).decode()
    response = AsgiClient().post(
        "/ingest/owntracks/", body, "application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert count(device) == 0


# ---------------------------------------------------------------------------------------------
# GPX
# ---------------------------------------------------------------------------------------------


def gpx(point_inner: str) -> bytes:
    return (
        "<gpx><trk><trkseg><trkpt lat='-29.9' lon='-71.25'><time>2026-11-25T10:00:00Z</time>"
        f"{point_inner}</trkpt></trkseg></trk></gpx>"
    ).encode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("inner", "field"),
    [
        ("<ele>1e30</ele>", "ele"),
        ("<extensions><speed>1e308</speed></extensions>", "speed"),
        ("<extensions><course>1_0</course></extensions>", "course"),
    ],
)
def test_gpx_bad_values_are_400_naming_the_field(tenant, device_for, api_client_for, inner, field):
    device, _ = device_for(tenant)
    response = api_client_for(tenant.user(Role.DISPATCHER)).post(
        "/api/v1/ingest/gpx",
        {"file": SimpleUploadedFile("t.gpx", gpx(inner)), "device": device.pk},
        format="multipart",
    )
    assert response.status_code == 400, response.content
    assert f"Track point 0: {field}:" in response.json()["detail"]
    assert count(device) == 0


# ---------------------------------------------------------------------------------------------
# The same bounds in every parser
# ---------------------------------------------------------------------------------------------


def test_every_protocol_applies_the_same_speed_and_altitude_bounds():
    now = timezone.now()
    too_fast = BOUNDS["speed_mps"].maximum * 1.01
    too_high = BOUNDS["altitude_m"].maximum * 1.01
    parsers = [
        lambda speed, alt: parse_native(native(speed=speed, altitude=alt)),
        lambda speed, alt: parse_osmand(
            {**OSMAND, "speed": str(speed / (1852 / 3600)), "altitude": str(alt)}, now=now
        ),
        lambda speed, alt: parse_traccar_json(
            {
                "location": {
                    **TRACCAR["location"],
                    "coords": {
                        "latitude": -29.9,
                        "longitude": -71.25,
                        "speed": speed,
                        "altitude": alt,
                    },
                }
            }
        ),
        lambda speed, alt: parse_owntracks({**OWNTRACKS, "vel": speed * 3.6, "alt": alt}),
    ]
    for parse in parsers:
        assert parse(10.0, 100.0)  # plausible values pass
        with pytest.raises(FixError):
            parse(too_fast, 100.0)
        with pytest.raises(FixError):
            parse(10.0, too_high)
    with pytest.raises(GpxError):
        parse_gpx(gpx(f"<ele>{too_high}</ele>"))
    with pytest.raises(GpxError):
        parse_gpx(gpx(f"<extensions><speed>{too_fast}</speed></extensions>"))


# ---------------------------------------------------------------------------------------------
# Serializers of positions never emit a non-finite number
# ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_position_and_ping_reads_survive_non_finite_values_already_stored(
    tenant, device_for, api_client_for
):
    """Rows written before the validator existed may hold Infinity or NaN: the API answers
    null for them instead of failing."""
    from django.contrib.gis.geos import Point

    vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    device, _ = device_for(tenant, vehicle=vehicle)
    at = timezone.now() - dt.timedelta(minutes=1)
    with organization_scope(tenant.organization):
        DevicePosition.objects.create(
            organization=tenant.organization,
            device=device,
            fix_time=at,
            received_at=at,
            location=Point(-71.25, -29.9, srid=4326),
            speed_mps=math.inf,
            heading_deg=math.nan,
            source="native",
        )
        Ping.objects.create(
            organization=tenant.organization,
            device=device,
            fix_time=at,
            received_at=at,
            location=Point(-71.25, -29.9, srid=4326),
            speed_mps=math.inf,
            altitude_m=-math.inf,
            accuracy_m=math.nan,
            source="native",
        )
    client = api_client_for(tenant.user(Role.DISPATCHER))
    positions = client.get("/api/v1/positions/")
    assert positions.status_code == 200, positions.content
    row = positions.json()["results"][0]
    assert row["speed_mps"] is None and row["heading_deg"] is None
    pings = client.get(f"/api/v1/pings/?device={device.pk}")
    assert pings.status_code == 200, pings.content
    ping = pings.json()["results"][0]
    assert (ping["speed_mps"], ping["altitude_m"], ping["accuracy_m"]) == (None, None, None)
    snapshot = client.get("/api/v1/console/snapshot/")
    assert snapshot.status_code == 200, snapshot.content
    [shown] = [v for v in snapshot.json()["vehicles"] if v["id"] == vehicle.pk]
    assert shown["speed_kmh"] is None and shown["heading"] is None


def test_the_live_vehicle_moved_message_has_no_infinity():
    event = {"id": 1, "lat": -29.9, "lon": -71.25, "speed_mps": 1e308, "fix_time": ISO}
    data = vehicle_moved_data(event)
    assert data["speed_kmh"] is None
    json.dumps(data, allow_nan=False)  # valid JSON for the browser
    assert vehicle_moved_data({**event, "speed_mps": 10})["speed_kmh"] == 36.0
