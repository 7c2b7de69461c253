"""Stop details for the console's side panel (`GET /api/v1/console/stops/<id>/`) and shipment
search (`GET /api/v1/console/search/?q=`): a timeline built from real scans, custody entries and
stop events, a proof of delivery whose signed links really serve the files, who may read, and
other organizations / carriers getting nothing."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import pytest
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from control_tower.tenancy.roles import Role
from tests.factories import (
    CarrierFactory,
    DriverFactory,
    RouteFactory,
    ShipmentFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tracking.models import Shipment, StopShipment

pytestmark = pytest.mark.django_db

HOME = (-71.2489, -29.9045)  # lon, lat


def details_url(stop) -> str:
    return f"/api/v1/console/stops/{stop.pk}/"


def search(client, q):
    return client.get("/api/v1/console/search/", {"q": q})


def image(fmt="JPEG", size=(40, 30), color=(9, 99, 9), mode="RGB") -> bytes:
    out = BytesIO()
    Image.new(mode, size, color).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


@pytest.fixture
def route(tenant):
    organization = tenant.organization
    return RouteFactory(
        organization=organization,
        code="LS-07",
        carrier=tenant.carrier,
        driver=DriverFactory(organization=organization, carrier=tenant.carrier, name="Pablo"),
        vehicle=VehicleFactory(organization=organization, carrier=tenant.carrier, plate="VAN-7"),
        status="in_progress",
    )


@pytest.fixture
def stop(route):
    stop = stop_with_shipments(
        route=route,
        sequence=1,
        location=Point(*HOME, srid=4326),
        window_start=timezone.now() - timedelta(hours=1),
        window_end=timezone.now() + timedelta(hours=1),
    )
    Shipment.dangerously_unscoped.filter(stop_shipments__stop=stop).update(
        status="out_for_delivery", location=Point(*HOME, srid=4326)
    )
    return stop


@pytest.fixture
def phone(tenant, route, device_for, device_client_for):
    _device, token = device_for(tenant, driver=route.driver)
    return device_client_for(token)


def deliver_with_proof(phone, stop, parcel):
    scanned = phone.post(
        "/api/v1/ingest/scans",
        {
            "scans": [
                {
                    "barcode": parcel.barcode,
                    "scan_type": "loaded",
                    "occurred_at": (timezone.now() - timedelta(minutes=30)).isoformat(),
                }
            ]
        },
        format="json",
    )
    assert scanned.status_code == 200, scanned.content
    photo = SimpleUploadedFile("door.jpg", image(), "image/jpeg")
    signature = SimpleUploadedFile("sig.png", image("PNG", (90, 30), 255, "L"), "image/png")
    delivered = phone.post(
        "/api/v1/ingest/pod",
        {
            "shipment": parcel.pk,
            "stop": stop.pk,
            "idempotency_key": "pod-1",
            "recipient_name": "Ana",
            "lat": HOME[1],
            "lon": HOME[0],
            "photos": [photo],
            "signature": signature,
        },
        format="multipart",
    )
    assert delivered.status_code == 201, delivered.content


def test_details_show_the_stop_its_route_a_timeline_and_proofs_with_working_links(
    tenant, route, stop, phone, api_client_for, django_assert_max_num_queries
):
    parcel = Shipment.dangerously_unscoped.get(stop_shipments__stop=stop)
    deliver_with_proof(phone, stop, parcel)
    client = api_client_for(tenant.user(Role.DISPATCHER))

    with django_assert_max_num_queries(20):
        response = client.get(details_url(stop))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == stop.pk and body["status"] == "completed" and body["sequence"] == 1
    assert (body["lat"], body["lon"]) == (HOME[1], HOME[0])
    assert body["late"] is False and body["recipient"] == "Ana Pérez"
    assert body["shipments"] == [
        {
            "id": parcel.pk,
            "reference": parcel.reference,
            "barcode": parcel.barcode,
            "status": "delivered",
        }
    ]
    assert body["route"] == {"id": route.pk, "code": "LS-07", "status": "in_progress"}
    assert body["driver"]["name"] == "Pablo" and body["vehicle"]["label"] == "VAN-7"
    assert body["carrier"]["id"] == tenant.carrier.pk

    kinds = [item["kind"] for item in body["timeline"]]
    assert {"scan", "custody", "status"} <= set(kinds)
    times = [item["at"] for item in body["timeline"]]
    assert times == sorted(times)  # oldest first (ISO strings of one offset sort as times)
    scan = next(item for item in body["timeline"] if item["kind"] == "scan")
    assert "loaded" in scan["text"] and scan["actor"].startswith("device")
    assert any(
        "delivered" in item["text"] for item in body["timeline"] if item["kind"] == "custody"
    )
    assert any(item["text"] == "Stop completed" for item in body["timeline"])

    (proof,) = body["proofs"]
    assert proof["recipient_name"] == "Ana" and proof["captured_at"]
    assert (proof["outcome"], proof["failure_reason"]) == ("delivered", "")
    anonymous = Client()  # the signed link is the authorization
    photo = anonymous.get(proof["photo_url"])
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    assert b"".join(photo.streaming_content)[:2] == b"\xff\xd8"
    signature = anonymous.get(proof["signature_url"])
    assert signature.status_code == 200 and signature["Content-Type"] == "image/png"
    tampered = anonymous.get(proof["photo_url"].rstrip("/") + "x/")
    assert tampered.status_code == 403


def test_a_stop_late_by_its_eta_says_so(tenant, route, api_client_for):
    late = stop_with_shipments(
        route=route,
        sequence=2,
        window_start=timezone.now() - timedelta(hours=2),
        window_end=timezone.now() - timedelta(minutes=5),
    )
    from tracking.models import Stop

    Stop.dangerously_unscoped.filter(pk=late.pk).update(
        eta=timezone.now() + timedelta(minutes=10),
        eta_latest=timezone.now() + timedelta(minutes=20),
    )
    body = api_client_for(tenant.user(Role.OPS_MANAGER)).get(details_url(late)).json()
    assert body["late"] is True and body["eta"] and body["timeline"] == [] and body["proofs"] == []


def test_who_may_read_stop_details(tenant, other_tenant, stop, api_client_for, api_key_for):
    for role in (Role.OWNER, Role.ADMIN, Role.DISPATCHER, Role.OPS_MANAGER, Role.CARRIER_USER):
        assert api_client_for(tenant.user(role)).get(details_url(stop)).status_code == 200, role
    refused = api_client_for(tenant.user(Role.DRIVER)).get(details_url(stop))
    assert refused.status_code == 403 and refused.json()["error"] == "permission_denied"
    assert api_client_for().get(details_url(stop)).status_code in (401, 403)
    key = api_client_for(key=api_key_for(tenant, scopes=["routes:read"]))
    assert key.get(details_url(stop)).status_code == 200
    foreign = api_client_for(other_tenant.user(Role.OWNER)).get(details_url(stop))
    assert foreign.status_code == 404 and foreign.json()["error"] == "not_found"
    assert (
        api_client_for(tenant.user(Role.OWNER)).get("/api/v1/console/stops/999999/").status_code
        == 404
    )


def test_a_carrier_user_does_not_see_another_carriers_stop(tenant, api_client_for):
    rival = CarrierFactory(organization=tenant.organization, code="rival")
    their_route = RouteFactory(organization=tenant.organization, carrier=rival)
    their_stop = stop_with_shipments(route=their_route)
    response = api_client_for(tenant.user(Role.CARRIER_USER)).get(details_url(their_stop))
    assert response.status_code == 404


# --- search ---------------------------------------------------------------------------------


@pytest.fixture
def parcels(tenant, route):
    organization = tenant.organization
    exact = ShipmentFactory(
        organization=organization, carrier=tenant.carrier, reference="ORD-10", barcode="X1"
    )
    prefixed = ShipmentFactory(
        organization=organization, carrier=tenant.carrier, reference="ORD-100", barcode="X2"
    )
    by_barcode = ShipmentFactory(
        organization=organization, carrier=tenant.carrier, reference="ZZZ-1", barcode="Ord-10"
    )
    unrelated = ShipmentFactory(
        organization=organization, carrier=tenant.carrier, reference="ABC-1", barcode="X3"
    )
    stop = stop_with_shipments(route=route, sequence=5, count=0)
    StopShipment(organization=organization, stop=stop, shipment=prefixed).save()
    return {
        "exact": exact,
        "prefixed": prefixed,
        "by_barcode": by_barcode,
        "other": unrelated,
        "stop": stop,
    }


def test_search_puts_exact_matches_first_then_prefixes_case_insensitively(
    tenant, route, parcels, api_client_for, django_assert_max_num_queries
):
    client = api_client_for(tenant.user(Role.DISPATCHER))
    with django_assert_max_num_queries(12):
        response = search(client, " ord-10 ")
    assert response.status_code == 200
    results = response.json()["results"]
    ids = [r["shipment"]["id"] for r in results]
    assert ids[0] in (parcels["exact"].pk, parcels["by_barcode"].pk)
    assert set(ids[:2]) == {parcels["exact"].pk, parcels["by_barcode"].pk}
    assert ids[2:] == [parcels["prefixed"].pk]
    prefixed = results[2]
    assert prefixed["stop"] == parcels["stop"].pk and prefixed["route"] == route.pk
    assert results[0]["stop"] is None and results[0]["route"] is None
    assert set(prefixed["shipment"]) == {"id", "reference", "barcode", "status"}
    assert search(client, "nothing-like-it").json() == {"results": []}


def test_search_is_capped_at_20(tenant, api_client_for):
    for n in range(25):
        ShipmentFactory(organization=tenant.organization, reference=f"BULK-{n:03d}")
    results = search(api_client_for(tenant.user(Role.DISPATCHER)), "bulk-").json()["results"]
    assert len(results) == 20


@pytest.mark.parametrize("q", ["", "a", " b "])
def test_a_query_shorter_than_two_characters_is_400(tenant, api_client_for, q):
    response = search(api_client_for(tenant.user(Role.DISPATCHER)), q)
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error" and "q" in response.json()["fields"]


def test_search_never_crosses_organizations_or_carriers(
    tenant, other_tenant, parcels, api_client_for
):
    foreign = api_client_for(other_tenant.user(Role.OWNER))
    assert search(foreign, "ORD-10").json() == {"results": []}
    ShipmentFactory(
        organization=tenant.organization,
        reference="ORD-RIVAL",
        carrier=CarrierFactory(organization=tenant.organization, code="rival"),
    )
    carrier_user = search(api_client_for(tenant.user(Role.CARRIER_USER)), "ord-").json()
    assert "ORD-RIVAL" not in {r["shipment"]["reference"] for r in carrier_user["results"]}
    assert "ORD-100" in {r["shipment"]["reference"] for r in carrier_user["results"]}
    assert search(api_client_for(tenant.user(Role.DRIVER)), "ord").status_code == 403
