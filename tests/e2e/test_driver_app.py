"""The driver app (/driver/) in a real Chromium on a phone (360×740, touch), served by the real
ASGI application on the test database, with a fake camera that films a parcel's barcode and a
fixed geolocation: sign in, today's stops in order, a load-out scan from the camera, a proof of
delivery with a photo and a drawn signature, a failed attempt, two actions offline (and a reload
while offline, served by the service worker), the outbox draining in order once back online,
another driver's route never shown, the revoked session back at sign-in; axe-core finds no
serious or critical violation; no CSP violation; Spanish labels for es-CL. Every step is checked
against the stored rows. Screenshots land in test-artifacts/screenshots/driver-*.png. The world
and the phone: tests/e2e/driver_phone.py."""

from __future__ import annotations

import re

import httpx
import pytest
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from playwright.sync_api import expect

from carriers.models import Carrier, Device
from carriers.services import device_revoke
from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from exceptions.models import Alert
from tests.e2e.driver_phone import (
    OTHER_EMAIL,
    PASSWORD,
    Phone,
    all_sent,
    device_token,
    driver_world,
    eventually,
    parcels,
    photo_file,
    settled,
    shoot,
    sign,
    sign_in,
    small_targets,
    stop_item,
)
from tests.e2e.test_tracking_page import axe_violations
from tracking.ingest.vehicles import clear_route_cache
from tracking.models import (
    Ping,
    PodFile,
    ProofOfDelivery,
    Scan,
    Shipment,
    ShipmentEvent,
    Stop,
)
from tracking.services.custody import custody_verify
from tracking.services.stops import stop_skip

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh():
    ratelimit_reset()
    clear_route_cache()
    yield
    clear_route_cache()


@pytest.fixture
def phone_for(request, camera_browser_for):
    """`phone_for(barcode, locale=...)` → a Phone whose camera films `barcode` (Code 128)."""
    phones: list[Phone] = []

    def make(barcode: str = "NONE0000", **kwargs) -> Phone:
        phone = Phone(camera_browser_for(barcode), **kwargs)
        phones.append(phone)
        return phone

    yield make
    for index, phone in enumerate(phones):  # the last screen, whether the test passed or not
        try:
            shoot(phone.page, f"last-{request.node.name}-{index}")
        finally:
            phone.context.close()


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


def test_route_scan_pod_failed_attempt_and_offline_outbox(
    asgi_live_server, tenant, scoped, phone_for
):
    server = asgi_live_server
    driver, route, stops, _other = driver_world(tenant)
    first, second, third = stops
    first_parcel = parcels(first)[0]
    phone = phone_for(first_parcel.barcode)
    page = phone.page

    # Sign in: today's stops in order, the next one highlighted, on the map too.
    sign_in(page, server, tenant.user(Role.DRIVER).email)
    expect(page.locator("#who")).to_contain_text("Pablo Rojas")
    expect(page.locator(".route-vehicle")).to_have_text("VAN-7")
    items = page.locator("li.stop")
    expect(items).to_have_count(3)
    expect(items.locator(".address")).to_have_text(
        ["Avenida del Mar 100", "Avenida del Mar 200", "Avenida del Mar 300"]
    )
    expect(stop_item(page, first)).to_have_class(re.compile(r"\bnext\b"))
    zone = tenant.organization.zone  # times in the organization's zone, not the phone's (UTC)
    window = [first.window_start.astimezone(zone), first.window_end.astimezone(zone)]
    expect(stop_item(page, first)).to_contain_text("Window {:%H:%M}–{:%H:%M}".format(*window))
    expect(page.locator("#map")).to_have_attribute("data-next", str(first.pk))
    expect(page.locator(".stop-marker")).to_have_count(3)
    expect(page.locator(".route-line")).to_have_count(1)
    navigate = stop_item(page, first).get_by_role("link", name="Google Maps")
    expect(navigate).to_have_attribute("href", re.compile(r"destination=-29\.904,-71\.255"))
    assert axe_violations(page) == []
    assert small_targets(page) == []
    shoot(page, "route")

    # The load-out scan at the hub, from the camera, then start the route.
    page.get_by_role("button", name="Scan", exact=True).click()
    expect(page.locator("#scan-type")).to_have_value("loaded")
    page.get_by_role("button", name="Start camera").click()
    result = page.locator("#scan-results li").first
    expect(result).to_have_attribute("data-result", "recorded", timeout=20_000)
    expect(result).to_contain_text(first_parcel.barcode)
    scan = Scan.objects.get(barcode=first_parcel.barcode)
    assert scan.scan_type == "loaded" and scan.result == "recorded"
    # A barcode not on the route: warned before anything is sent.
    page.get_by_label("Or type the barcode").fill("ZZ404")
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#scan-warning")).to_contain_text("not on today's route")
    page.get_by_role("button", name="Cancel", exact=True).click()
    assert axe_violations(page) == []
    shoot(page, "scan", full_page=False)
    page.get_by_role("button", name="Close").click()
    page.get_by_role("button", name="Start route").click()
    expect(page.locator(".route-status")).to_have_text("In progress", timeout=20_000)
    route.refresh_from_db()
    assert route.status == "in_progress"
    # At the door of stop 1, stop 3's parcel: warned, nothing sent.
    page.get_by_role("button", name="Scan", exact=True).click()
    expect(page.locator("#scan-type")).to_have_value("delivered")
    page.get_by_label("Or type the barcode").fill(parcels(third)[0].barcode)
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#scan-warning")).to_contain_text(
        "belongs to stop 3, not to the open stop 1"
    )
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_role("button", name="Close").click()
    assert Scan.objects.count() == 1

    # Stop 1: arrive, then the proof of delivery with a photo and a signature.
    stop_item(page, first).get_by_role("button", name="Arrived").click()
    expect(stop_item(page, first)).to_have_attribute("data-status", "arrived")
    stop_item(page, first).get_by_role("button", name="Deliver").click()
    page.locator("#pod-photos").set_input_files(photo_file())
    expect(page.locator("#pod-photo-status")).to_have_text("1 photo ready")
    sign(page)
    expect(page.locator("#pod-signature")).to_have_attribute("data-inked", "true")
    page.get_by_label("Received by (name)").fill("Ana Number1")
    assert axe_violations(page) == []
    assert small_targets(page) == []
    shoot(page, "pod", full_page=False)
    page.get_by_role("button", name="Save delivery").click()
    settled(page, first, "completed")
    first.refresh_from_db()
    assert first.status == "completed"
    for parcel in parcels(first):  # both parcels of the stop, each with its own proof
        pod = ProofOfDelivery.objects.get(shipment=parcel)
        assert pod.stop_id == first.pk and pod.recipient_name == "Ana Number1"
        files = {f.kind: f for f in PodFile.objects.filter(pod=pod)}
        assert set(files) == {"photo", "signature"}
        assert max(files["photo"].width, files["photo"].height) <= 1600
        assert Shipment.objects.get(pk=parcel.pk).status == "delivered"
        with organization_scope(tenant.organization):
            assert custody_verify(Shipment.objects.get(pk=parcel.pk)).valid

    # Stop 2: a failed attempt with a reason.
    expect(stop_item(page, second)).to_have_class(re.compile(r"\bnext\b"))
    stop_item(page, second).get_by_role("button", name="Failed attempt").click()
    page.get_by_role("dialog", name="Failed attempt").get_by_label("Reason").select_option(
        "not_home"
    )
    page.get_by_role("button", name="Save failed attempt").click()
    settled(page, second, "failed")
    second.refresh_from_db()
    assert second.status == "failed" and second.failure_reason == "not_home"

    # Stop 3 offline: arrive and deliver; both wait, also across a reload.
    phone.offline(True)
    before_offline = timezone.now()
    stop_item(page, third).get_by_role("button", name="Arrived").click()
    stop_item(page, third).get_by_role("button", name="Deliver").click()
    page.locator("#pod-photos").set_input_files(photo_file())
    expect(page.locator("#pod-photo-status")).to_have_text("1 photo ready")
    page.get_by_role("button", name="Save delivery").click()
    expect(page.locator("#queue-count")).to_have_text("2 waiting to send")
    expect(stop_item(page, third).locator(".stop-status")).to_have_text(
        "Completed (waiting to send)"
    )
    page.reload()
    expect(page.locator("#queue-count")).to_have_text("2 waiting to send")
    expect(page.locator("li.stop")).to_have_count(3)
    expect(stop_item(page, third)).to_have_attribute("data-status", "completed")
    expect(page.locator("#route-message")).to_contain_text("Saved copy")
    shoot(page, "offline")
    third.refresh_from_db()
    assert third.status == "pending"
    offline_until = timezone.now()
    phone.offline(False)
    settled(page, third, "completed")

    # Exactly once and in order, dated when they happened (offline), not when they arrived.
    third.refresh_from_db()
    assert third.status == "completed"
    assert before_offline <= third.actual_arrival <= third.actual_departure <= offline_until
    third_parcel = parcels(third)[0]
    assert ProofOfDelivery.objects.filter(shipment=third_parcel).count() == 1
    assert list(
        ShipmentEvent.objects.filter(shipment=third_parcel)
        .order_by("occurred_at", "pk")
        .values_list("to_status", flat=True)
    )[-1:] == ["delivered"]
    assert list(
        ShipmentEvent.objects.filter(shipment=third_parcel, to_status="delivered").values_list(
            "occurred_at", flat=True
        )
    ) == [third.actual_departure]
    with organization_scope(tenant.organization):
        assert custody_verify(Shipment.objects.get(pk=third_parcel.pk)).valid
    # The phone's position went out too (while the app was open).
    ping = Ping.objects.filter(device__driver=driver).latest("fix_time")
    assert (round(ping.location.y, 3), round(ping.location.x, 3)) == (-29.905, -71.255)
    assert phone.csp_violations == []
    assert not [url for url in phone.blocked if "maps" not in url and "tile" not in url]


def test_only_own_route_and_revoked_session_returns_to_sign_in(
    asgi_live_server, tenant, scoped, phone_for
):
    server = asgi_live_server
    driver, route, stops, other_stop = driver_world(tenant)
    phone = phone_for()
    page = phone.page
    sign_in(page, server, tenant.user(Role.DRIVER).email)
    expect(page.locator("li.stop")).to_have_count(3)
    expect(page.get_by_text("Calle Ajena 9")).to_have_count(0)
    token = device_token(page)
    answer = httpx.post(
        f"{server.url}/api/v1/stops/{other_stop.pk}/arrive/",
        json={},
        headers={"Authorization": f"Device {token}"},
        timeout=10,
    )
    assert answer.status_code == 404, answer.text

    # Skip stop 1 with a reason; report a breakdown on the route.
    stop_item(page, stops[0]).get_by_role("button", name="Skip").click()
    page.get_by_role("dialog", name="Skip this stop").get_by_label("Reason").select_option(
        "address_not_found"
    )
    page.get_by_role("button", name="Skip stop").click()
    settled(page, stops[0], "skipped")
    stops[0].refresh_from_db()
    assert stops[0].status == "skipped" and stops[0].failure_reason == "address_not_found"
    # The server fails once (503): the report waits, says why, and goes on "Send now".
    failures = []

    def unavailable_once(route_, request):
        if failures:
            route_.fallback()
        else:
            failures.append(request.url)
            route_.fulfill(status=503, json={"detail": "Down for maintenance."})

    phone.context.route("**/api/v1/incidents/", unavailable_once)
    page.get_by_role("button", name="Report a problem").click()
    page.get_by_label("What happened?").select_option("breakdown")
    page.get_by_label("Details (optional)").fill("Flat tyre")
    page.get_by_role("button", name="Send report").click()
    expect(page.locator("#queue-count")).to_have_text("1 waiting to send")
    page.locator("#queue-button").click()
    expect(page.locator("#queue-list li.item-retrying .item-state")).to_have_text(
        "will retry: Down for maintenance."
    )
    assert not Alert.objects.filter(kind="incident").exists()
    page.get_by_role("button", name="Send now").click()
    alert = eventually(page, lambda: Alert.objects.filter(kind="incident", route=route).first())
    all_sent(page)
    page.locator("#queue-button").click()
    assert alert.severity == "critical" and "Flat tyre" in str(alert.detail)

    # Stop 2: a failed attempt with a photo of the closed gate (evidence, not a proof).
    stop_item(page, stops[1]).get_by_role("button", name="Failed attempt").click()
    dialog = page.get_by_role("dialog", name="Failed attempt")
    dialog.get_by_label("Reason").select_option("access_denied")
    dialog.get_by_label("Photo (optional)").set_input_files(photo_file())
    page.get_by_role("button", name="Save failed attempt").click()
    settled(page, stops[1], "failed")
    stops[1].refresh_from_db()
    assert stops[1].status == "failed" and stops[1].failure_reason == "access_denied"
    evidence = ProofOfDelivery.objects.get(stop=stops[1])
    assert evidence.outcome == "attempt_failed"
    assert PodFile.objects.filter(pod=evidence, kind="photo").count() == 1

    # The dispatcher skips stop 3 while the phone still shows it: the arrival is refused for
    # good, kept under "needs attention" with the server's words until dismissed.
    dispatcher = actor_for_membership(tenant.members[Role.DISPATCHER])
    stop_skip(stop=Stop.objects.get(pk=stops[2].pk), actor=dispatcher, note="Shop closed")
    stop_item(page, stops[2]).get_by_role("button", name="Arrived").click()
    expect(page.locator("#queue-count")).to_have_text("All sent · 1 needs attention")
    page.locator("#queue-button").click()
    refused = page.locator("#queue-list li.item-rejected")
    expect(refused).to_contain_text("Arrived at stop 3")
    expect(refused.locator(".item-state")).to_have_text(re.compile(r"^refused: .+"))
    assert axe_violations(page) == []
    shoot(page, "queue")
    refused.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#queue-count")).to_have_text("All sent")
    expect(stop_item(page, stops[2])).to_have_attribute("data-status", "skipped")
    expect(stop_item(page, stops[0])).to_contain_text("Reason: Address problem")

    # Revoked: the next call answers 401; back to sign-in, the report kept for later.
    device = Device.objects.get(driver=driver, kind="driver_app", revoked_at__isnull=True)
    with organization_scope(tenant.organization):
        device_revoke(device=device)
    page.get_by_role("button", name="Report a problem").click()
    page.get_by_label("What happened?").select_option("other")
    page.get_by_role("button", name="Send report").click()
    expect(page.locator("#signin-screen")).to_be_visible()
    expect(page.locator("#signin-message")).to_contain_text("session was revoked")
    expect(page.locator("#signin-message")).to_contain_text("1 action is kept on this phone.")
    assert axe_violations(page) == []
    shoot(page, "revoked")

    # Signing in again: the same device (a new token), and the kept report goes out.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("li.stop")).to_have_count(3)
    all_sent(page)
    assert Device.objects.filter(driver=driver).count() == 1
    assert Device.objects.get(driver=driver).revoked_at is None
    eventually(page, lambda: Alert.objects.get(pk=alert.pk).detail["incident"] == "other")
    assert phone.csp_violations == []


def test_spanish_phone(asgi_live_server, tenant, scoped, phone_for):
    server = asgi_live_server
    driver, _route, stops, _other = driver_world(tenant)
    # This carrier asks for no proof of delivery: one tap confirms a delivery.
    Carrier.objects.filter(pk=driver.carrier_id).update(sla_pod_photo_required=False)
    phone = phone_for(locale="es-CL")
    page = phone.page
    page.goto(f"{server.url}/driver/")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", name="Iniciar sesión")).to_be_visible()
    expect(page.get_by_text("Traccar Client")).to_be_visible()
    assert axe_violations(page) == []
    shoot(page, "es-signin")
    page.get_by_label("Correo electrónico").fill(tenant.user(Role.DRIVER).email)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.locator("li.stop")).to_have_count(3)
    expect(page.locator("#queue-count")).to_have_text("Todo enviado")
    expect(page.get_by_role("button", name="Llegué").first).to_be_visible()
    shoot(page, "es")
    stop_item(page, stops[0]).get_by_role("button", name="Entregado, sin prueba").click()
    settled(page, stops[0], "completed")
    stops[0].refresh_from_db()
    assert stops[0].status == "completed" and not ProofOfDelivery.objects.exists()
    # Signing out revokes this phone's token and forgets the route.
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.locator("#signin-message")).to_have_text("Cerraste la sesión.")
    eventually(page, lambda: Device.objects.filter(revoked_at__isnull=False).exists())
    assert page.evaluate("async () => (await caches.keys()).includes('ct-driver-data')") is False

    # Back in; an arrival offline, then signing out while still offline (confirmed: the
    # arrival stays on the phone).
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.locator("li.stop")).to_have_count(3)
    phone.offline(True)
    stop_item(page, stops[1]).get_by_role("button", name="Llegué").click()
    expect(page.locator("#queue-count")).to_have_text("1 esperando envío")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cerrar sesión").click()
    expect(page.locator("#signin-message")).to_have_text("Cerraste la sesión.")
    phone.offline(False)

    # Another driver on the same phone: their route only, and the first driver's arrival is
    # set aside, never sent with their token.
    page.get_by_label("Correo electrónico").fill(OTHER_EMAIL)
    page.get_by_label("Contraseña").fill(PASSWORD)
    page.get_by_role("button", name="Iniciar sesión").click()
    expect(page.locator(".address")).to_have_text(["Calle Ajena 9"])
    expect(page.locator("#queue-count")).to_have_text("Todo enviado · 1 requiere atención")
    page.locator("#queue-button").click()
    expect(page.locator("#queue-list li.item-rejected .item-state")).to_contain_text(
        "hecha por otro conductor en este teléfono"
    )
    stops[1].refresh_from_db()
    assert stops[1].status == "pending"
    assert phone.csp_violations == []


def test_pin_delivery_refused_then_redone(asgi_live_server, tenant, scoped, phone_for):
    server = asgi_live_server
    _driver, _route, stops, _other = driver_world(tenant)
    parcel = parcels(stops[0])[0]
    Shipment.objects.filter(pk=parcel.pk).update(delivery_pin_hash=make_password("4821"))
    phone = phone_for()
    page = phone.page
    sign_in(page, server, tenant.user(Role.DRIVER).email)
    first = stop_item(page, stops[0])
    expect(first).to_contain_text("PIN needed")
    first.get_by_role("button", name="Arrived").click()

    def deliver(pin: str) -> None:
        first.get_by_role("button", name="Deliver").click()
        page.locator("#pod-photos").set_input_files(photo_file())
        page.get_by_label("PIN from the recipient").fill(pin)
        page.get_by_role("button", name="Save delivery").click()

    # Without a PIN the form says so; a wrong one is refused by the server and kept aside.
    first.get_by_role("button", name="Deliver").click()
    page.get_by_role("button", name="Save delivery").click()
    expect(page.locator("#pod-error")).to_have_text("Take at least one photo.")
    page.get_by_role("dialog", name="Proof of delivery").get_by_role(
        "button", name="Cancel"
    ).click()
    deliver("0000")
    expect(page.locator("#queue-count")).to_contain_text("1 needs attention", timeout=20_000)
    expect(first).to_have_attribute("data-status", "arrived")
    page.locator("#queue-button").click()
    expect(page.locator("#queue-list li.item-rejected")).to_contain_text("PIN does not match")
    assert not ProofOfDelivery.objects.filter(shipment=parcel).exists()

    deliver("4821")
    settled(page, stops[0], "completed")
    pod = ProofOfDelivery.objects.get(shipment=parcel)
    assert pod.pin_verified is True
    assert phone.csp_violations == []
