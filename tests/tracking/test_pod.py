"""Proof of delivery: the cases tests/tracking/test_proof_of_delivery.py does not cover.

Several photos and the custody chain, orientation and the size cap, WebP by content, a POD after
the stop was completed first, a refused stop, who may submit, signed links bound to their
organization, the list's query ceiling, concurrent replays. Real PostGIS, real files.
"""

from __future__ import annotations

import hashlib
import threading
from io import BytesIO
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from PIL import Image

from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import organization_scope
from tests.factories import RouteFactory, ShipmentFactory, stop_with_shipments
from tracking.models import CustodyEntry, PodFile, ProofOfDelivery, Shipment, ShipmentEvent
from tracking.services.custody import custody_verify
from tracking.services.stops import stop_complete

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/pod"
HOME = (-71.2489, -29.9045)  # lon, lat
SIGNING_SALT = "tracking.pod-file"  # tracking/services/proof_of_delivery.py


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def stored_files(media: Path) -> list[Path]:
    return sorted(p for p in media.rglob("*") if p.is_file())


def image_bytes(size=(64, 48), fmt="JPEG", *, orientation: int | None = None, color=(9, 99, 9)):
    out = BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.new("RGB", size, color).save(out, format=fmt, exif=exif)
    return out.getvalue()


def upload(name: str, data: bytes, content_type: str = "image/jpeg"):
    return SimpleUploadedFile(name, data, content_type)


@pytest.fixture
def parcel(tenant):
    return ShipmentFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        status="out_for_delivery",
        location=Point(*HOME, srid=4326),
    )


@pytest.fixture
def phone(tenant, device_for, device_client_for):
    _device, token = device_for(tenant)
    return device_client_for(token)


def send(client, shipment, key="pod-1", *, photos=None, signature=None, **fields):
    body = {
        "shipment": shipment.pk,
        "idempotency_key": key,
        "recipient_name": "Ana",
        "lat": HOME[1],
        "lon": HOME[0],
        **fields,
    }
    body["photos"] = photos if photos is not None else [upload("door.jpg", image_bytes())]
    if not body["photos"]:
        del body["photos"]
    if signature is not None:
        body["signature"] = signature
    return client.post(URL, body, format="multipart")


def fresh(obj):
    return type(obj).dangerously_unscoped.get(pk=obj.pk)


def test_every_file_is_evidence_in_a_chain_that_verifies(phone, parcel, media):
    sig = BytesIO()
    Image.new("L", (90, 30), 255).save(sig, format="PNG")
    response = send(
        phone,
        parcel,
        photos=[
            upload("a.jpg", image_bytes(color=(200, 0, 0))),
            upload("b.jpg", image_bytes(color=(0, 0, 200))),
        ],
        signature=upload("s.png", sig.getvalue(), "image/png"),
    )
    assert response.status_code == 201, response.content
    on_disk = {hashlib.sha256(p.read_bytes()).hexdigest() for p in stored_files(media)}
    assert len(on_disk) == 3
    assert {f["sha256"] for f in response.json()["files"]} == on_disk
    entry = CustodyEntry.dangerously_unscoped.filter(shipment=parcel).order_by("sequence").last()
    assert entry.kind == "pod"
    assert set(entry.evidence) == {"photo-1", "photo-2", "signature"}
    assert set(entry.evidence.values()) == on_disk
    assert entry.details["pod"] == response.json()["id"]
    with organization_scope(parcel.organization):
        assert custody_verify(fresh(parcel)).valid


def test_more_photos_than_allowed_are_refused(phone, parcel, media, settings):
    photos = [upload(f"{n}.jpg", image_bytes()) for n in range(settings.POD_MAX_PHOTOS + 1)]
    response = send(phone, parcel, photos=photos)
    assert response.status_code == 400 and "photos" in response.json()["fields"]
    assert stored_files(media) == [] and ProofOfDelivery.dangerously_unscoped.count() == 0


def test_orientation_is_applied_and_the_long_side_capped(phone, parcel, media):
    turned = send(
        phone, parcel, key="a", photos=[upload("t.jpg", image_bytes((60, 20), orientation=6))]
    ).json()
    assert (turned["files"][0]["width"], turned["files"][0]["height"]) == (20, 60)
    other = ShipmentFactory(
        organization=parcel.organization, carrier=parcel.carrier, status="out_for_delivery"
    )
    big = send(phone, other, key="b", photos=[upload("big.jpg", image_bytes((3000, 1200)))])
    assert (big.json()["files"][0]["width"], big.json()["files"][0]["height"]) == (2560, 1024)
    for path in stored_files(media):
        assert not Image.open(path).getexif()  # the orientation tag went with the rest


def test_the_type_comes_from_the_content_not_the_name(phone, parcel, media):
    webp = image_bytes(fmt="WEBP")
    response = send(phone, parcel, photos=[upload("photo.png", webp, "text/plain")])
    assert response.status_code == 201, response.content
    [stored] = stored_files(media)
    assert stored.suffix == ".jpg" and Image.open(stored).format == "JPEG"
    assert response.json()["files"][0]["content_type"] == "image/jpeg"


def test_a_pod_after_the_stop_was_completed_only_adds_to_the_chain(tenant, phone):
    route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    stop = stop_with_shipments(route=route)
    shipment = Shipment.dangerously_unscoped.get(stops=stop)
    with organization_scope(tenant.organization):
        stop_complete(stop=stop, actor=None)
    assert fresh(shipment).status == "delivered"
    events = ShipmentEvent.dangerously_unscoped.filter(shipment=shipment).count()
    response = send(phone, shipment, stop=stop.pk)
    assert response.status_code == 201, response.content
    assert ShipmentEvent.dangerously_unscoped.filter(shipment=shipment).count() == events
    last = CustodyEntry.dangerously_unscoped.filter(shipment=shipment).order_by("sequence").last()
    assert last.kind == "pod" and last.custodian == "recipient:Ana"
    with organization_scope(tenant.organization):
        assert custody_verify(fresh(shipment)).valid


def test_a_stop_that_cannot_complete_refuses_the_pod_and_leaves_no_file(tenant, phone, media):
    route = RouteFactory(
        organization=tenant.organization, carrier=tenant.carrier, status="cancelled"
    )
    stop = stop_with_shipments(route=route)
    shipment = Shipment.dangerously_unscoped.get(stops=stop)
    Shipment.dangerously_unscoped.filter(pk=shipment.pk).update(status="out_for_delivery")
    response = send(phone, shipment, stop=stop.pk)
    assert response.status_code == 409 and response.json()["error"] == "illegal_transition"
    assert ProofOfDelivery.dangerously_unscoped.count() == 0 and stored_files(media) == []
    assert fresh(stop).status == "pending" and fresh(shipment).status == "out_for_delivery"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        (Role.DISPATCHER, 201),
        (Role.ADMIN, 201),
        (Role.CARRIER_USER, 201),  # tenant.carrier's user, and the parcel is tenant.carrier's
        (Role.OPS_MANAGER, 403),
        (Role.DRIVER, 403),  # a driver reports through the phone's device token
        ([Scope.TRACKING_WRITE], 201),
        ([Scope.TRACKING_READ], 403),
        ([Scope.SHIPMENTS_WRITE], 403),
    ],
)
def test_who_may_submit(tenant, parcel, api_client_for, api_key_for, media, who, expected):
    if isinstance(who, list):
        client = api_client_for(key=api_key_for(tenant, scopes=who))
    else:
        client = api_client_for(tenant.user(who))
    response = send(client, parcel)
    assert response.status_code == expected, response.content
    if expected != 201:
        assert ProofOfDelivery.dangerously_unscoped.count() == 0 and stored_files(media) == []


def test_a_signed_link_is_bound_to_its_organization(
    tenant, other_tenant, phone, parcel, device_for, device_client_for
):
    ours = send(phone, parcel).json()["files"][0]
    _device, their_token = device_for(other_tenant)
    theirs_parcel = ShipmentFactory(
        organization=other_tenant.organization,
        carrier=other_tenant.carrier,
        status="out_for_delivery",
    )
    red = upload("red.jpg", image_bytes(color=(255, 0, 0)))
    theirs = send(device_client_for(their_token), theirs_parcel, photos=[red]).json()["files"][0]
    for link in (ours, theirs):
        response = Client().get(link["url"])
        assert response.status_code == 200
        served = b"".join(response.streaming_content)
        assert hashlib.sha256(served).hexdigest() == link["sha256"]
        assert response["Cache-Control"] == "private, max-age=60"
        assert response["Content-Disposition"] == "inline"
    # Even a correctly signed token only opens a file of the organization it names.
    their_file = PodFile.dangerously_unscoped.get(sha256=theirs["sha256"])
    crossed = signing.TimestampSigner(salt=SIGNING_SALT).sign(
        f"{tenant.organization.pk}.{their_file.pk}"
    )
    response = Client().get(f"/pod-files/{crossed}/")
    assert response.status_code == 403 and response.json()["error"] == "link_expired"


def test_the_list_stays_within_a_query_ceiling(
    tenant, phone, api_client_for, django_assert_max_num_queries
):
    for n in range(6):
        shipment = ShipmentFactory(
            organization=tenant.organization, carrier=tenant.carrier, status="out_for_delivery"
        )
        photos = [upload("a.jpg", image_bytes()), upload("b.jpg", image_bytes())]
        assert send(phone, shipment, key=f"k{n}", photos=photos).status_code == 201
    owner = api_client_for(tenant.user(Role.OWNER))
    with django_assert_max_num_queries(10):
        body = owner.get("/api/v1/pods/").json()
    assert body["count"] == 6 and all(len(pod["files"]) == 2 for pod in body["results"])


def test_a_reused_key_does_not_reveal_another_carriers_pod(
    tenant, phone, parcel, device_for, device_client_for
):
    from tests.factories import CarrierFactory

    first = send(phone, parcel, key="shared-key")
    assert first.status_code == 201
    rival = CarrierFactory(organization=tenant.organization)
    _device, token = device_for(tenant, carrier=rival)
    rivals_parcel = ShipmentFactory(
        organization=tenant.organization, carrier=rival, status="out_for_delivery"
    )
    response = send(device_client_for(token), rivals_parcel, key="shared-key")
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_reused"
    assert "files" not in response.json()


def test_a_link_to_a_file_gone_from_storage_is_a_clean_404(phone, parcel, media):
    link = send(phone, parcel).json()["files"][0]["url"]
    for path in stored_files(media):
        path.unlink()
    response = Client(raise_request_exception=True).get(link)
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_store_one_pod_and_one_set_of_files(
    tenant, device_for, device_client_for, media
):
    parcel = ShipmentFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        status="out_for_delivery",
        location=Point(*HOME, srid=4326),
    )
    _device, token = device_for(tenant)
    barrier = threading.Barrier(4)
    results: list[int] = []

    def submit():
        try:
            client = device_client_for(token)
            barrier.wait(timeout=10)
            results.append(send(client, parcel, key="same").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [200, 200, 200, 201]
    assert ProofOfDelivery.dangerously_unscoped.count() == 1
    assert len(stored_files(media)) == 1  # the losers' files were removed
    assert CustodyEntry.dangerously_unscoped.filter(shipment=parcel, kind="pod").count() == 1
    with organization_scope(tenant.organization):
        assert custody_verify(fresh(parcel)).valid
