"""The driver app's end-to-end world and phone (tests/e2e/test_driver_app.py): a driver with a
route of three stops today and another driver's route, a phone-sized Chromium context whose
camera films a barcode and that can go offline (page and service worker), and the steps the
tests repeat (sign in, draw a signature, wait for the outbox, axe-core, screenshots)."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path
from urllib.parse import urlsplit

from django.contrib.gis.geos import Point
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Page, expect

from carriers.models import Driver
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.e2e.conftest import LOCAL_HOSTS, SCREENSHOT_DIR, TIMEOUT_MS
from tests.factories import (
    DriverFactory,
    HubFactory,
    MembershipFactory,
    RouteFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tracking.models import Shipment

# Playwright sees (and routes) the service worker's own requests only with this switch, read by
# its driver process when it starts: without it "offline" would not reach the worker, and the
# reload-while-offline step would be served by the network instead of the worker's cache.
os.environ["PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS"] = "1"

PHONE = {"width": 360, "height": 740}
HERE = {"latitude": -29.905, "longitude": -71.255}
PASSWORD = "correct horse battery staple"
OTHER_EMAIL = "otro@acme.example.com"


# ---------------------------------------------------------------------------------------------
# The world: a driver with a route of three stops today, and another driver's route
# ---------------------------------------------------------------------------------------------


def driver_world(tenant):
    org = tenant.organization
    user = tenant.user(Role.DRIVER)
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    now = timezone.now()
    with organization_scope(org):
        driver = Driver.objects.get(user=user)
        driver.name = "Pablo Rojas"
        driver.save(update_fields=["name"])
        hub = HubFactory(organization=org, code="CQX", name="Coquimbo hub")
        route = RouteFactory(
            organization=org,
            carrier=driver.carrier,
            hub=hub,
            driver=driver,
            vehicle=VehicleFactory(organization=org, carrier=driver.carrier, plate="VAN-7"),
            code="R-CQX-01",
            planned_start=now - dt.timedelta(minutes=10),
        )
        stops = []
        for sequence in (1, 2, 3):
            stop = stop_with_shipments(
                route=route,
                sequence=sequence,
                count=2 if sequence == 1 else 1,  # one proof of delivery per parcel
                address=f"Avenida del Mar {sequence}00",
                location=Point(-71.25 - sequence * 0.005, -29.9 - sequence * 0.004, srid=4326),
                window_start=now + dt.timedelta(hours=sequence),
                window_end=now + dt.timedelta(hours=sequence + 2),
                eta=now + dt.timedelta(minutes=30 * sequence),
                eta_earliest=now + dt.timedelta(minutes=30 * sequence - 5),
                eta_latest=now + dt.timedelta(minutes=30 * sequence + 10),
            )
            Shipment.objects.filter(stops=stop).update(
                status="out_for_delivery", recipient_name=f"Ana Number{sequence}"
            )
            stops.append(stop)
        other_user = MembershipFactory(
            organization=org, role=Role.DRIVER, user__username=OTHER_EMAIL
        ).user
        other_user.set_password(PASSWORD)
        other_user.save(update_fields=["password"])
        other_driver = DriverFactory(
            organization=org, carrier=driver.carrier, name="Otro", user=other_user
        )
        other_route = RouteFactory(
            organization=org, carrier=driver.carrier, hub=hub, driver=other_driver, code="R-OTHER"
        )
        other_stop = stop_with_shipments(route=other_route, sequence=1, address="Calle Ajena 9")
    return driver, route, stops, other_stop


def parcels(stop) -> list[Shipment]:
    return list(Shipment.objects.filter(stops=stop).order_by("pk"))


# ---------------------------------------------------------------------------------------------
# The browser: a phone whose camera films one barcode
# ---------------------------------------------------------------------------------------------


class Phone:
    """A phone-sized context of `browser` (a camera browser: tests/e2e/fake_camera.py); requests
    never leave the machine, CSP violations are collected, and `offline(True)` cuts the page and
    its service worker off the network."""

    def __init__(self, browser, *, locale: str = "en-US"):
        self.context = browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale=locale,
            geolocation=HERE,
            permissions=["geolocation", "camera"],
            service_workers="allow",
        )
        self.context.set_default_timeout(TIMEOUT_MS)
        self.is_offline = False
        self.blocked: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.csp_violations: list[str] = []
        self.page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append(message.text)

    def _route(self, route, request) -> None:
        if urlsplit(request.url).hostname not in LOCAL_HOSTS:
            self.blocked.append(request.url)
            route.abort()
        elif self.is_offline and request.service_worker:
            # set_offline() does not reach service workers (microsoft/playwright#2311).
            route.abort("internetdisconnected")
        else:
            route.continue_()

    def offline(self, value: bool) -> None:
        self.is_offline = value
        self.context.set_offline(value)


def shoot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """A screenshot in CSS pixels (360 px wide): light enough for docs/img/driver_*.png. A
    dialog covers the screen, not the page: those are taken as the phone shows them."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"driver-{name}.png"
    page.screenshot(path=str(path), full_page=full_page, scale="css")
    return path


def small_targets(page: Page) -> list[str]:
    """Visible controls smaller than 48 × 48 CSS px (a thumb's width, WCAG 2.5.5)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('button, a[href], input, select, textarea')]
          .filter((el) => el.offsetParent !== null)
          .map((el) => [el, el.getBoundingClientRect()])
          .filter(([, box]) => box.width < 48 || box.height < 48)
          .map(([el, box]) => `${el.outerHTML.slice(0, 80)} ${box.width}x${box.height}`)"""
    )


def photo_file() -> dict:
    """A 2000×1500 JPEG (the app must downscale it to 1600 px before queueing it)."""
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 1500), (200, 120, 40)).save(buffer, "JPEG", quality=80)
    return {"name": "parcel.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def sign(page: Page) -> None:
    """Draw a signature on the canvas with the pointer."""
    box = page.locator("#pod-signature").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.7)
    page.mouse.down()
    for step in range(1, 12):
        page.mouse.move(
            box["x"] + 20 + step * (box["width"] - 40) / 11,
            box["y"] + box["height"] * (0.3 if step % 2 else 0.7),
            steps=3,
        )
    page.mouse.up()


def sign_in(page: Page, server, email: str) -> None:
    page.goto(f"{server.url}/driver/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def stop_item(page: Page, stop):
    return page.locator(f'li.stop[data-stop-id="{stop.pk}"]')


def all_sent(page: Page) -> None:
    """Nothing waits in the outbox (in any language)."""
    expect(page.locator("#queue-button.has-waiting")).to_have_count(0, timeout=20_000)


def eventually(page: Page, predicate, timeout_s: float = 20.0):
    """Poll the database until `predicate()` is truthy, letting the page run meanwhile."""
    for _ in range(int(timeout_s * 10)):
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError("condition not met in time")


def settled(page: Page, stop, status: str) -> None:
    """The server has the stop's new status: sent, and the route read again."""
    done = page.locator(
        f'li.stop[data-stop-id="{stop.pk}"][data-status="{status}"]'
        " .stop-status:not([data-waiting])"
    )
    expect(done).to_have_count(1, timeout=20_000)
    all_sent(page)


def device_token(page: Page) -> str:
    return page.evaluate(
        """() => new Promise((resolve, reject) => {
          const request = indexedDB.open("ct-driver");
          request.onsuccess = () => {
            const get = request.result.transaction("kv").objectStore("kv").get("session");
            get.onsuccess = () => resolve(get.result && get.result.token);
            get.onerror = () => reject(get.error);
          };
        })"""
    )
