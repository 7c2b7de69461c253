"""Electronic proof of delivery: hardened image uploads, PIN, geofence, idempotency, signed
links, the custody entry, and tenancy. Real PostGIS, real files (in a temporary MEDIA_ROOT)."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.gis.geos import Point
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from PIL import Image

from control_tower.tenancy.roles import Role, Scope
from tests.factories import CarrierFactory, RouteFactory, ShipmentFactory, stop_with_shipments
from tracking.models import CustodyEntry, PodFile, ProofOfDelivery, Shipment, Stop

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/pod"
HOME = (-71.2489, -29.9045)  # lon, lat of the delivery address


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return tmp_path


def stored_files(media: Path) -> list[Path]:
    return [p for p in media.rglob("*") if p.is_file()]


def jpeg(size=(64, 48), *, gps=False, trailer: bytes = b"") -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = BytesIO()
    exif = Image.Exif()
    if gps:
        exif[0x010F] = "EvilPhone"  # Make
        exif[0x8825] = {1: "S", 2: (29.0, 54.0, 16.2), 3: "W", 4: (71.0, 14.0, 56.0)}  # GPS
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue() + trailer


def png(size=(120, 40)) -> bytes:
    out = BytesIO()
    Image.new("L", size, 255).save(out, format="PNG")
    return out.getvalue()


def upload(name: str, data: bytes, content_type="image/jpeg"):
    return SimpleUploadedFile(name, data, content_type)


@pytest.fixture
def parcel(tenant):
    return ShipmentFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        status="out_for_delivery",
        location=Point(*HOME, srid=4326),
        recipient_name="Ana Rojas",
    )


@pytest.fixture
def phone(tenant, device_for, device_client_for):
    device, token = device_for(tenant)
    client = device_client_for(token)
    client.device = device
    return client


def send(client, parcel, key="pod-1", *, photos=None, signature=None, **fields):
    body = {
        "shipment": parcel.pk,
        "idempotency_key": key,
        "recipient_name": "Ana",
        "lat": HOME[1],
        "lon": HOME[0],
        **fields,
    }
    if photos is None:
        photos = [upload("door.jpg", jpeg(gps=True))]
    if photos:
        body["photos"] = photos
    if signature is not None:
        body["signature"] = signature
    return client.post(URL, body, format="multipart")


def fresh(obj):
    return type(obj).dangerously_unscoped.get(pk=obj.pk)


def test_a_pod_delivers_the_shipment_and_stores_clean_images(phone, parcel, media):
    sent = jpeg(gps=True)
    response = send(
        phone,
        parcel,
        photos=[upload("door.jpg", sent)],
        signature=upload("sig.png", png(), "image/png"),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["shipment_reference"] == parcel.reference
    assert body["distance_m"] == pytest.approx(0, abs=0.01) and body["outside_geofence"] is False
    assert body["pin_verified"] is None
    assert [f["kind"] for f in body["files"]] == ["photo", "signature"]
    assert fresh(parcel).status == "delivered"
    files = stored_files(media)
    assert len(files) == 2
    photo = next(p for p in files if p.suffix == ".jpg")
    assert "door" not in photo.name  # random names, never the client's
    data = photo.read_bytes()
    assert data != sent
    assert b"EvilPhone" not in data
    assert not Image.open(BytesIO(data)).getexif()  # EXIF (GPS, make) is gone
    stored = PodFile.dangerously_unscoped.get(kind="photo")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (stored.width, stored.height) == (64, 48)


def test_the_custody_entry_holds_the_file_digests(phone, parcel):
    send(phone, parcel, signature=upload("sig.png", png(), "image/png"))
    entry = CustodyEntry.dangerously_unscoped.filter(shipment=parcel).order_by("sequence").last()
    assert entry.kind == "pod" and entry.custodian == "recipient:Ana Rojas"
    digests = {f.kind: f.sha256 for f in PodFile.dangerously_unscoped.all()}
    assert entry.evidence == {"photo-1": digests["photo"], "signature": digests["signature"]}
    assert entry.details["outside_geofence"] is False


def test_signed_links_work_expire_and_cannot_be_altered(phone, parcel, settings):
    body = send(phone, parcel).json()
    link = body["files"][0]["url"]
    response = Client().get(link)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    token = link.rstrip("/").rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert Client().get(link.replace(token, tampered)).status_code == 403
    other_file = signing.TimestampSigner(salt="something-else").sign("1.1")
    assert Client().get(f"/pod-files/{other_file}/").status_code == 403
    settings.POD_URL_TTL_S = -1  # every link is now past its lifetime
    expired = Client().get(link)
    assert expired.status_code == 403 and expired.json()["error"] == "link_expired"


def test_a_replay_returns_the_first_pod_and_stores_nothing_more(phone, parcel, media):
    first = send(phone, parcel)
    again = send(phone, parcel)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert ProofOfDelivery.dangerously_unscoped.count() == 1
    assert len(stored_files(media)) == 1


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        (upload("door.jpg", b"this is text pretending to be a jpeg"), "Not an image"),
        (
            upload(
                "door.jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "application/pdf"
            ),
            "Not an image",
        ),
        (
            upload(
                "anim.gif",
                b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!"
                b"\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D"
                b"\x01\x00;",
                "image/gif",
            ),
            "Unsupported image type GIF",
        ),
        (upload("cut.jpg", jpeg()[:200]), "damaged or truncated"),
        (upload("empty.jpg", b""), "empty"),
    ],
)
def test_files_that_are_not_clean_images_are_refused_and_nothing_is_stored(
    phone, parcel, media, photo, message
):
    response = send(phone, parcel, photos=[photo])
    assert response.status_code == 400
    assert message in str(response.json()["fields"]["photos"])
    assert ProofOfDelivery.dangerously_unscoped.count() == 0 and stored_files(media) == []
    assert fresh(parcel).status == "out_for_delivery"


def test_oversized_upload_is_refused(phone, parcel, media, settings):
    settings.POD_MAX_IMAGE_BYTES = 1000
    response = send(phone, parcel, photos=[upload("big.jpg", jpeg(size=(400, 400)))])
    assert response.status_code == 400 and "larger than" in response.json()["detail"]
    assert stored_files(media) == []


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_decompression_bomb_is_refused_before_decoding(phone, parcel, media):
    response = send(
        phone, parcel, photos=[upload("bomb.png", png_bomb(50_000, 50_000), "image/png")]
    )
    assert response.status_code == 400 and "too many pixels" in response.json()["detail"]
    assert stored_files(media) == []


def test_a_polyglot_keeps_only_the_image(phone, parcel, media):
    zip_tail = b"PK\x03\x04" + b"\x00" * 26 + b"evil.html<script>alert(1)</script>"
    response = send(phone, parcel, photos=[upload("poly.jpg", jpeg(trailer=zip_tail))])
    assert response.status_code == 201
    [stored] = stored_files(media)
    data = stored.read_bytes()
    assert b"PK\x03\x04" not in data and b"<script>" not in data
    assert data.endswith(b"\xff\xd9")  # ends where a JPEG ends


def test_a_pin_is_required_when_the_shipment_has_one(phone, parcel, media):
    Shipment.dangerously_unscoped.filter(pk=parcel.pk).update(
        delivery_pin_hash=make_password("4821")
    )
    missing = send(phone, parcel, key="a")
    wrong = send(phone, parcel, key="b", pin="1111")
    assert (missing.status_code, missing.json()["error"]) == (400, "pin_required")
    assert (wrong.status_code, wrong.json()["error"]) == (400, "pin_mismatch")
    assert stored_files(media) == [] and fresh(parcel).status == "out_for_delivery"
    right = send(phone, parcel, key="c", pin="4821")
    assert right.status_code == 201 and right.json()["pin_verified"] is True


def test_the_pin_is_set_through_the_shipment_api_and_never_shown(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.DISPATCHER))
    shipment = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    response = client.patch(
        f"/api/v1/shipments/{shipment.pk}/", {"delivery_pin": "12"}, format="json"
    )
    assert response.status_code == 400 and "delivery_pin" in response.json()["fields"]
    response = client.patch(
        f"/api/v1/shipments/{shipment.pk}/", {"delivery_pin": "482190"}, format="json"
    )
    assert response.json()["pin_required"] is True and "delivery_pin" not in response.json()
    assert fresh(shipment).delivery_pin_hash.startswith(("pbkdf2", "md5", "argon2"))


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"])
def test_a_pin_hashed_by_the_production_hasher_fits(tenant, api_client_for):
    # The tests hash with MD5 for speed; PBKDF2 hashes are ~90 characters and once overflowed
    # the column (a 500 on setting a PIN in production).
    client = api_client_for(tenant.user(Role.DISPATCHER))
    shipment = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    response = client.patch(
        f"/api/v1/shipments/{shipment.pk}/", {"delivery_pin": "482190"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert fresh(shipment).delivery_pin_hash.startswith("pbkdf2_sha256$")


def test_the_geofence_is_the_organizations(phone, parcel, tenant):
    tenant.organization.pod_geofence_m = 50
    tenant.organization.save()
    # ~111 m north of the address.
    response = send(phone, parcel, lat=HOME[1] + 0.001, lon=HOME[0])
    body = response.json()
    assert body["distance_m"] == pytest.approx(110.9, abs=0.5)
    assert body["outside_geofence"] is True


def test_inside_a_wider_geofence_and_without_location(phone, parcel, tenant):
    tenant.organization.pod_geofence_m = 150
    tenant.organization.save()
    inside = send(phone, parcel, key="k1", lat=HOME[1] + 0.001, lon=HOME[0]).json()
    assert inside["outside_geofence"] is False
    other = ShipmentFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        status="out_for_delivery",
        location=Point(*HOME, srid=4326),
    )
    body = {"shipment": other.pk, "idempotency_key": "k2", "photos": [upload("d.jpg", jpeg())]}
    unlocated = phone.post(URL, body, format="multipart").json()
    assert unlocated["distance_m"] is None and unlocated["outside_geofence"] is False


def test_a_pod_for_a_cancelled_shipment_is_refused_with_nothing_left(phone, tenant, media):
    cancelled = ShipmentFactory(
        organization=tenant.organization, carrier=tenant.carrier, status="cancelled"
    )
    response = send(phone, cancelled, signature=upload("s.png", png(), "image/png"))
    assert response.status_code == 409 and response.json()["error"] == "not_deliverable"
    assert ProofOfDelivery.dangerously_unscoped.count() == 0
    assert stored_files(media) == []


def test_a_pod_with_its_stop_completes_the_stop(phone, tenant):
    route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    stop = stop_with_shipments(route=route)
    shipment = Shipment.dangerously_unscoped.filter(stops=stop).first()
    Shipment.dangerously_unscoped.filter(pk=shipment.pk).update(status="at_hub")
    response = send(phone, shipment, stop=stop.pk)
    assert response.status_code == 201, response.content
    assert fresh(stop).status == "completed" and fresh(shipment).status == "delivered"
    kinds = list(
        CustodyEntry.dangerously_unscoped.filter(shipment=shipment)
        .order_by("sequence")
        .values_list("kind", flat=True)
    )
    assert kinds[-1] == "pod"
    other_stop = stop_with_shipments(route=route, sequence=2)
    wrong = send(phone, shipment, key="x", stop=other_stop.pk)
    assert wrong.status_code == 400 and "stop" in wrong.json()["fields"]
    assert fresh(other_stop).status == "pending"
    assert Stop.dangerously_unscoped.count() == 2


def test_bad_forms_are_explained(phone, parcel):
    assert send(phone, parcel, photos=[]).json()["fields"] == {
        "photos": ["Send at least one photo or a signature."]
    }
    response = phone.post(URL, {"idempotency_key": "x"}, format="multipart")
    assert "shipment" in response.json()["fields"]
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    assert "captured_at" in send(phone, parcel, captured_at=future).json()["fields"]
    assert "lat" in send(phone, parcel, lat="", lon=3).json()["fields"]


def test_reads_with_filters_and_roles(tenant, phone, parcel, api_client_for, api_key_for):
    send(phone, parcel)
    owner = api_client_for(tenant.user(Role.OWNER))
    listing = owner.get("/api/v1/pods/", {"outside_geofence": "false"}).json()
    assert listing["count"] == 1 and listing["results"][0]["files"][0]["url"].startswith("http")
    pod_id = listing["results"][0]["id"]
    assert owner.get(f"/api/v1/pods/{pod_id}/").status_code == 200
    assert owner.get("/api/v1/pods/", {"outside_geofence": "true"}).json()["count"] == 0
    assert api_client_for(tenant.user(Role.OPS_MANAGER)).get("/api/v1/pods/").status_code == 200
    assert api_client_for(tenant.user(Role.DRIVER)).get("/api/v1/pods/").status_code == 403
    narrow = api_client_for(key=api_key_for(tenant, scopes=[Scope.SHIPMENTS_READ]))
    assert narrow.get("/api/v1/pods/").status_code == 403
    assert phone.get("/api/v1/pods/").status_code == 401  # a device reports, it does not read


def test_carriers_see_and_submit_only_their_own(
    tenant, device_for, device_client_for, api_client_for
):
    other_carrier = CarrierFactory(organization=tenant.organization)
    foreign = ShipmentFactory(
        organization=tenant.organization, carrier=other_carrier, status="out_for_delivery"
    )
    _device, token = device_for(tenant)  # a device of tenant.carrier
    response = send(device_client_for(token), foreign)
    assert response.status_code == 404
    carrier_user = api_client_for(tenant.user(Role.CARRIER_USER))
    assert carrier_user.get("/api/v1/pods/").json()["count"] == 0


def test_another_organization_can_neither_submit_nor_read(
    tenant,
    other_tenant,
    phone,
    parcel,
    device_for,
    device_client_for,
    api_client_for,
    api_key_for,
    media,
):
    _theirs, their_token = device_for(other_tenant)
    attackers = [
        device_client_for(their_token),
        api_client_for(other_tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(other_tenant)),
    ]
    for attacker in attackers:
        response = send(attacker, parcel, key="evil")
        assert response.status_code == 404, response.content
        by_reference = attacker.post(
            URL,
            {
                "shipment_reference": parcel.reference,
                "idempotency_key": "evil",
                "photos": [upload("d.jpg", jpeg())],
            },
            format="multipart",
        )
        assert by_reference.status_code == 404
    assert ProofOfDelivery.dangerously_unscoped.count() == 0 and stored_files(media) == []
    ours = send(phone, parcel).json()
    for attacker in attackers[1:]:
        assert attacker.get("/api/v1/pods/").json()["count"] == 0
        assert attacker.get(f"/api/v1/pods/{ours['id']}/").status_code == 404
    # Their replay of our idempotency key does not hand them our POD.
    theirs = ShipmentFactory(
        organization=other_tenant.organization,
        carrier=other_tenant.carrier,
        status="out_for_delivery",
    )
    replay = send(attackers[0], theirs, key="pod-1")
    assert replay.status_code == 201 and replay.json()["id"] != ours["id"]


def test_signature_only_is_enough_and_is_kept_as_png(phone, parcel, media):
    response = send(phone, parcel, photos=[], signature=upload("s.png", png(), "image/png"))
    assert response.status_code == 201
    [stored] = stored_files(media)
    assert stored.suffix == ".png" and stored.read_bytes()[:4] == b"\x89PNG"


def test_wrong_pins_lock_the_shipment_for_a_while(phone, parcel, settings):
    from django.core.cache import cache

    settings.POD_PIN_MAX_FAILURES = 3
    Shipment.dangerously_unscoped.filter(pk=parcel.pk).update(
        delivery_pin_hash=make_password("4821")
    )
    cache.delete(f"pod-pin-failures:{parcel.organization_id}:{parcel.pk}")
    codes = [send(phone, parcel, key=f"g{n}", pin=f"{n:04d}").json()["error"] for n in range(3)]
    assert codes == ["pin_mismatch"] * 3
    locked = send(phone, parcel, key="right", pin="4821")
    assert locked.status_code == 429 and locked.json()["error"] == "too_many_attempts"
    cache.delete(f"pod-pin-failures:{parcel.organization_id}:{parcel.pk}")  # the lock expires
    assert send(phone, parcel, key="right-again", pin="4821").status_code == 201
