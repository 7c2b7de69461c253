"""Issue 18, finding 4 (the input bounds): Traccar Client arrays are capped like native batches,
fix times outside the window are refused before they can reach the default partition, and
planned times in year 4845 are refused. Each a 400 naming the field, nothing stored."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.utils import timezone

from control_tower.tenancy.roles import Role
from tests.factories import (
    DriverFactory,
    HubFactory,
    RouteFactory,
    ShipmentFactory,
    VehicleFactory,
)
from tests.tracking.asgi_client import AsgiClient
from tracking.models import Route


def stored_pings(device) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tracking_ping WHERE device_id = %s", [device.pk])
        return cursor.fetchone()[0]


def traccar(at: dt.datetime) -> dict:
    return {
        "location": {
            "timestamp": at.isoformat(),
            "coords": {"latitude": -29.9, "longitude": -71.25},
        },
        "device_id": "1",
    }


@pytest.mark.django_db(transaction=True)
def test_a_traccar_array_has_the_native_batch_cap(tenant, device_for, settings):
    settings.PING_BATCH_MAX = 3
    device, token = device_for(tenant)
    start = timezone.now() - dt.timedelta(minutes=10)
    fixes = [traccar(start + dt.timedelta(seconds=n)) for n in range(4)]
    client = AsgiClient()
    refused = client.post(f"/ingest/osmand/{token}/", json.dumps(fixes), "application/json")
    assert refused.status_code == 400 and "body" in refused.json()["fields"], refused.content
    assert "At most 3" in refused.json()["fields"]["body"][0]
    assert stored_pings(device) == 0
    accepted = client.post(f"/ingest/osmand/{token}/", json.dumps(fixes[:3]), "application/json")
    assert accepted.status_code == 200 and stored_pings(device) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "timestamp",
    [
        "9999-12-31T23:59:59-01:00",  # used to overflow converting to UTC: a 500
        "0001-01-01T00:00:00+01:00",
        "9999-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "AHEAD",  # just beyond PING_MAX_AHEAD_S: it would sit in the default partition
    ],
)
def test_fix_times_outside_the_window_are_refused(tenant, device_for, settings, timestamp):
    if timestamp == "AHEAD":
        ahead = timezone.now() + dt.timedelta(seconds=settings.PING_MAX_AHEAD_S + 60)
        timestamp = ahead.isoformat()
    device, token = device_for(tenant)
    params = {"id": "1", "lat": "-29.9", "lon": "-71.25", "timestamp": timestamp}
    response = AsgiClient().get(f"/ingest/osmand/{token}/", params)
    assert response.status_code == 400, response.content
    assert "timestamp" in response.json()["fields"]
    assert stored_pings(device) == 0


@pytest.mark.django_db(transaction=True)
def test_a_fix_within_the_window_ahead_is_stored_and_flagged_future(tenant, device_for, settings):
    from tracking.models import Ping, PingFlag

    device, token = device_for(tenant)
    soon = timezone.now() + dt.timedelta(seconds=settings.PING_MAX_AHEAD_S - 3600)
    params = {"id": "1", "lat": "-29.9", "lon": "-71.25", "timestamp": soon.isoformat()}
    assert AsgiClient().get(f"/ingest/osmand/{token}/", params).status_code == 200
    [ping] = Ping.dangerously_unscoped.filter(device=device)
    assert ping.flags & PingFlag.FUTURE
    assert settings.PING_MAX_AHEAD_S < settings.PING_PARTITIONS_AHEAD_DAYS * 86400


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["planned_start", "planned_end"])
def test_a_route_planned_in_year_4845_is_refused(tenant, api_client_for, field):
    hub = HubFactory(organization=tenant.organization)
    body = {
        "date": str(timezone.localdate()),
        "code": "R4845",
        "hub": hub.pk,
        "carrier": tenant.carrier.pk,
        "planned_start": "2026-11-24T08:00:00Z",
        "planned_end": "2026-11-24T18:00:00Z",
        field: "4845-01-01T08:00:00Z",
    }
    client = api_client_for(tenant.user(Role.ADMIN))
    response = client.post("/api/v1/routes/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not Route.dangerously_unscoped.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["planned_start", "planned_end"])
def test_a_plan_in_year_4845_is_refused(tenant, api_client_for, field):
    org = tenant.organization
    hub = HubFactory(organization=org)
    driver = DriverFactory(organization=org, carrier=tenant.carrier)
    vehicle = VehicleFactory(organization=org, carrier=tenant.carrier)
    parcel = ShipmentFactory(organization=org, status="at_hub")
    route = {
        "code": "R1",
        "hub": hub.pk,
        "carrier": tenant.carrier.pk,
        "driver": driver.pk,
        "vehicle": vehicle.pk,
        "planned_start": "2026-11-24T12:00:00Z",
        "planned_end": "2026-11-24T20:00:00Z",
        field: "4845-11-24T12:00:00Z",
        "stops": [{"shipment_references": [parcel.reference]}],
    }
    body = {"date": str(timezone.localdate()), "routes": [route]}
    client = api_client_for(tenant.user(Role.ADMIN))
    response = client.post("/api/v1/routes/bulk/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in json.dumps(response.json()["fields"])
    assert not Route.dangerously_unscoped.exists()


@pytest.mark.django_db
def test_a_planning_shift_in_year_4845_is_refused(tenant, api_client_for):
    org = tenant.organization
    hub = HubFactory(organization=org)
    driver = DriverFactory(organization=org, carrier=tenant.carrier)
    vehicle = VehicleFactory(organization=org, carrier=tenant.carrier)
    shift = {
        "vehicle": vehicle.pk,
        "driver": driver.pk,
        "shift_start": "4845-11-24T08:00:00Z",
        "shift_end": "4845-11-24T18:00:00Z",
    }
    body = {"hub": hub.pk, "date": str(timezone.localdate()), "vehicles": [shift]}
    client = api_client_for(tenant.user(Role.ADMIN))
    response = client.post("/api/v1/routes/plan/", body, format="json")
    assert response.status_code == 400, response.content
    assert "shift_start" in json.dumps(response.json()["fields"])
    assert not Route.dangerously_unscoped.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("since", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_a_webhook_replay_since_an_absurd_year_is_refused(tenant, api_client_for, since):
    client = api_client_for(tenant.user(Role.ADMIN))
    endpoint = client.post(
        "/api/v1/webhook-endpoints/",
        {"name": "ops", "url": "https://hooks.example.com/in", "event_types": ["*"]},
        format="json",
    )
    assert endpoint.status_code == 201, endpoint.content
    response = client.post(
        f"/api/v1/webhook-endpoints/{endpoint.json()['id']}/replay/",
        {"since": since},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "since" in response.json()["fields"]


@pytest.mark.django_db
def test_an_alert_snoozed_until_year_9999_is_refused(tenant, api_client_for):
    from tests.exceptions.test_alerts_api import raise_on

    alert = raise_on(RouteFactory(organization=tenant.organization, carrier=tenant.carrier))
    client = api_client_for(tenant.user(Role.DISPATCHER))
    response = client.post(
        f"/api/v1/alerts/{alert.pk}/snooze/", {"until": "9999-12-31T23:59:59Z"}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "until" in response.json()["fields"]
    alert.refresh_from_db()
    assert alert.snoozed_until is None
