"""Issue 18, finding 2: nineteen malformed inputs that used to answer 500. Each must be a 400
JSON error naming the field, and nothing of the request may be stored."""

from __future__ import annotations

import base64
import json

import pytest
from django.db import connection
from django.utils import timezone

from control_tower.tenancy.roles import Role
from tests.tracking.asgi_client import AsgiClient, run

NOW = int(timezone.now().timestamp()) - 600
NATIVE = {"time": NOW, "lat": -29.9, "lon": -71.25, "accuracy": 5}
OSMAND = {"id": "1", "lat": "-29.9", "lon": "-71.25", "timestamp": str(NOW)}
TRACCAR = {
    "location": {"timestamp": NOW * 1000, "coords": {"latitude": -29.9, "longitude": -71.25}},
    "device_id": "1",
}
OWNTRACKS = {"_type": "location", "lat": -29.9, "lon": -71.25, "tst": NOW}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def fix(raw_field: str) -> str:
    """A native batch of one valid fix plus `raw_field`, written as raw JSON text (so escapes
    such as \\u0000 and lone surrogates reach the server as a client would send them)."""
    return '[{"time": TIME, "lat": -29.9, "lon": -71.25, FIELD}]'.replace("TIME", str(NOW)).replace(
        "FIELD", raw_field
    )


def stored_pings(device) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_ping WHERE device_id = %s", [device.pk])
        return cursor.fetchone()[0]


def assert_names(response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    assert body["error"] in {"validation_error", "parse_error"}, body
    assert field in json.dumps(body["fields"]), body


# Native batch: the raw JSON text, and where the error is named.
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (fix('"event_id": "a\\u0000b"'), "event_id"),
        (fix('"event_id": "a\\ud800b"'), "event_id"),
        (json.dumps([{**NATIVE, "attributes": {"n": "x\u0000"}}]), "attributes"),
        (
            fix('"attributes": {"k": "\\udc00"}'),
            "attributes",
        ),
        (fix('"speed": ' + "9" * 400), "speed"),
        (nested(5_000), "body"),
        (nested(100_000), "body"),
        ('{"pings": ' + nested(5_000) + "}", "body"),
    ],
)
def test_native_batch(tenant, device_for, device_client_for, raw, field):
    device, token = device_for(tenant)
    response = device_client_for(token).post(
        "/api/v1/ingest/pings", raw, content_type="application/json"
    )
    assert_names(response, field)
    assert stored_pings(device) == 0


# OsmAnd query string and form, Traccar Client JSON: the ASGI fast path.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("query", "form", "field"),
    [
        ("id=dev%00ice", None, "id"),
        ("id=dev%ED%A0%80ice", None, "id"),  # a lone surrogate written as UTF-8 bytes
        ("", "id=dev%00ice", "id"),
        ("", "id=dev%ED%A0%80ice", "id"),
    ],
)
def test_osmand(tenant, device_for, query, form, field):
    device, token = device_for(tenant)
    rest = "&".join(f"{k}={v}" for k, v in OSMAND.items() if k != "id")
    client = AsgiClient()
    if form is None:
        url = f"/ingest/osmand/{token}/?{query}&{rest}"
        [response] = run(lambda c: c.get(url))  # AsgiClient.get would replace the query
    else:
        response = client.post(f"/ingest/osmand/{token}/", f"{form}&{rest}")
    assert_names(response, field)
    assert stored_pings(device) == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (json.dumps(TRACCAR).replace('"device_id": "1"', '"device_id": "a\\u0000"'), "device_id"),
        (json.dumps(TRACCAR).replace('"device_id": "1"', '"device_id": "a\\ud800"'), "device_id"),
        (nested(5_000), "body"),
        ('{"location": ' + nested(100_000) + "}", "body"),
    ],
)
def test_traccar_json(tenant, device_for, raw, field):
    device, token = device_for(tenant)
    response = AsgiClient().post(f"/ingest/osmand/{token}/", raw, "application/json")
    assert_names(response, field)
    assert stored_pings(device) == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (json.dumps({**OWNTRACKS, "tid": "r\u0000"}), "tid"),
        (json.dumps(OWNTRACKS)[:-1] + ', "tid": "r\\udfff"}', "tid"),
        (json.dumps({**OWNTRACKS, "tst": 1e20}), "tst"),
        (nested(5_000), "body"),
        ('{"_type": "location", "inregions": ' + nested(100_000) + "}", "body"),
    ],
)
def test_owntracks(tenant, device_for, raw, field):
    device, token = device_for(tenant)
    auth = "Basic " + base64.b64encode(f"rk:{token}".encode()).decode()
    response = AsgiClient().post(
        "/ingest/owntracks/", raw, "application/json", HTTP_AUTHORIZATION=auth
    )
    assert_names(response, field)
    assert stored_pings(device) == 0


# DRF endpoints: the JSON parser of the whole API.
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/api/v1/shipments/", nested(5_000)),
        ("/api/v1/shipments/", '{"reference": "x", "location": ' + nested(100_000) + "}"),
        (
            "/api/v1/hubs/",
            '{"name": "h", "location": {"type": "Point", "coordinates": ' + nested(5_000) + "}}",
        ),
    ],
)
def test_drf_json_parser(tenant, api_client_for, path, raw):
    from tracking.models import Hub, Shipment

    client = api_client_for(tenant.user(Role.ADMIN))
    response = client.post(path, raw, content_type="application/json")
    assert_names(response, "body")
    assert not Hub.dangerously_unscoped.exists() and not Shipment.dangerously_unscoped.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity"])
def test_pod_multipart_lat(tenant, device_for, device_client_for, value):
    from django.contrib.gis.geos import Point
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.factories import ShipmentFactory
    from tests.tracking.test_pod import image_bytes
    from tracking.models import ProofOfDelivery

    parcel = ShipmentFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        status="out_for_delivery",
        location=Point(-71.2489, -29.9045, srid=4326),
    )
    _device, token = device_for(tenant)
    body = {
        "shipment": parcel.pk,
        "idempotency_key": "pod-nan",
        "recipient_name": "Ana",
        "lat": value,
        "lon": -71.2489,
        "photos": [SimpleUploadedFile("d.jpg", image_bytes(), "image/jpeg")],
    }
    response = device_client_for(token).post("/api/v1/ingest/pod", body, format="multipart")
    assert_names(response, "lat")
    assert not ProofOfDelivery.dangerously_unscoped.exists()
