"""The customer tracking page in a real Chromium on a phone (360×740), served by the real ASGI
application (uvicorn, websockets) on the test database: open a link, see the ETA window and the
status, watch the driver appear when the stop becomes next and move on a new ping within 2 s,
leave instructions, reschedule, rate after delivery; axe-core finds no serious or critical
violation; the page breaks no rule of its own Content-Security-Policy. Screenshots (Spanish and
English, before and after delivery) land in test-artifacts/screenshots/tracking-*.png."""

from __future__ import annotations

import datetime as dt
import re
import struct
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from playwright.sync_api import Page, expect

from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.e2e.conftest import LOCAL_HOSTS, REPO_ROOT, SCREENSHOT_DIR, TIMEOUT_MS
from tests.portal.test_tracking_page import link_for, make_route
from tracking.ingest.vehicles import clear_route_cache
from tracking.models import PodFile, ProofOfDelivery, Stop
from tracking.services.stops import stop_complete

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 360, "height": 740}
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A valid grey PNG (the proof-of-delivery image the browser must render)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = tiny_png()


@pytest.fixture(autouse=True)
def _fresh():
    ratelimit_reset()
    clear_route_cache()
    yield
    clear_route_cache()


def phone_page(browser, blocked_requests, *, locale: str) -> Page:
    """A phone-sized page whose requests never leave the machine (map tiles are aborted: the
    markers must show without them) and whose CSP violations are collected."""
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale=locale
    )
    context.set_default_timeout(TIMEOUT_MS)

    def only_local(route, request):
        if urlsplit(request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked_requests.append(request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.csp_violations = []
    page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text and page.csp_violations.append(message.text)
        ),
    )
    return page


def shoot(page: Page, name: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"tracking-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    # A lighter copy for docs/img/ (docs/TRACKING_PAGE.md shows a few).
    page.screenshot(
        path=str(path.with_suffix(".jpg")), full_page=True, type="jpeg", quality=70, scale="css"
    )
    return path


def axe_violations(page: Page) -> list[dict]:
    """axe-core from node_modules (npm ci), evaluated through the DevTools protocol (the page's
    CSP forbids inline scripts, rightly; evaluation from the test is not the page's script)."""
    assert AXE.exists(), "run `npm ci` (scripts/bootstrap.sh) for axe-core"
    page.evaluate(AXE.read_text() + "\n;true")
    result = page.evaluate(
        "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a',"
        " 'wcag21aa', 'best-practice']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target)}))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def post_ping(server, token: str, lat: float, lon: float) -> None:
    at = dt.datetime.now(dt.UTC).isoformat()
    response = httpx.post(
        f"{server.url}/api/v1/ingest/pings",
        json=[{"time": at, "lat": lat, "lon": lon, "accuracy": 5, "speed": 8, "heading": 90}],
        headers={"Authorization": f"Device {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def branded_world(tenant, device_for):
    org = tenant.organization
    org.name = "Coquimbo Express"
    org.primary_color = "#e4572e"
    org.support_phone = "+56 51 222 3344"
    org.support_email = "ayuda@coquimbo.example"
    org.save()
    with organization_scope(org):
        route, stops = make_route(org)
        shipments = [stop.shipments.get() for stop in stops]
    _device, phone_token = device_for(tenant, vehicle=route.vehicle, carrier=route.carrier)
    return route, stops, shipments, phone_token


def deliver_with_pod(tenant, stop, shipment) -> None:
    org = tenant.organization
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(org):
        stop_complete(stop=Stop.objects.get(pk=stop.pk), actor=actor)
        pod = ProofOfDelivery.objects.create(
            organization=org,
            idempotency_key=f"pod-{shipment.pk}",
            shipment=shipment,
            stop=stop,
            recipient_name="Ana Rojas",
            captured_at=timezone.now(),
            note="Con el conserje",
        )
        for kind in ("photo", "signature"):
            name = default_storage.save(f"pod/e2e-{kind}.png", ContentFile(PNG))
            PodFile.objects.create(
                organization=org,
                pod=pod,
                kind=kind,
                storage_name=name,
                content_type="image/png",
                size_bytes=len(PNG),
                width=4,
                height=3,
                sha256="0" * 64,
            )


def complete(tenant, stop) -> None:
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        stop_complete(stop=Stop.objects.get(pk=stop.pk), actor=actor)


def test_spanish_phone_live_driver_instructions_delivery_and_rating(
    asgi_live_server, tenant, device_for, browser, blocked_requests
):
    server = asgi_live_server
    _route, stops, shipments, phone = branded_world(tenant, device_for)
    _link, token = link_for(tenant.organization, shipments[1])  # the second stop
    page = phone_page(browser, blocked_requests, locale="es-CL")
    page.goto(f"{server.url}/t/{token}")

    # Before "next": status, an honest window, how many stops, no map, no position.
    expect(page.locator("h1")).to_have_text("En reparto")
    expect(page.locator(".eta-text")).to_have_text(
        re.compile(r"^Entre las \d\d:\d\d y las \d\d:\d\d$")
    )
    expect(page.locator("[data-bind=stops_before_text]")).to_have_text("1 parada antes de la tuya")
    expect(page.locator("#live-status")).to_have_text("En vivo")
    expect(page.locator("#map-section")).to_be_hidden()
    assert page.evaluate("() => typeof window.L") == "undefined"  # Leaflet not even loaded
    assert axe_violations(page) == []
    shoot(page, "es-before")

    # The stop before ours is done: the driver marker appears (tiles are unreachable here).
    complete(tenant, stops[0])
    expect(page.locator("[data-bind=stops_before_text]")).to_have_text(
        "Eres la próxima parada del conductor"
    )
    expect(page.locator("#map-section")).to_be_visible()
    expect(page.locator(".leaflet-marker-pane .ct-driver")).to_have_count(1)
    expect(page.locator(".leaflet-marker-pane .ct-home")).to_have_count(1)
    # A new ping moves it within 2 s.
    post_ping(server, phone, -29.8833333, -71.2044444)
    expect(page.locator("#map")).to_have_attribute("data-lat", "-29.88333", timeout=2000)
    expect(page.locator("#map")).to_have_attribute("data-lon", "-71.20444", timeout=2000)
    assert axe_violations(page) == []
    shoot(page, "es-next")

    # Instructions, with JavaScript's help or not: a plain form post.
    page.locator("#instructions-text").fill("Portón verde, código 4521")
    page.get_by_role("button", name="Guardar instrucciones").click()
    expect(page.locator("#done-notice")).to_have_text(
        "Gracias. Tu conductor verá tus instrucciones."
    )
    expect(page.locator("#instructions-text")).to_have_value("Portón verde, código 4521")
    with organization_scope(tenant.organization):
        shipments[1].refresh_from_db()
        assert shipments[1].delivery_instructions == "Portón verde, código 4521"

    # Delivered (with its proof): the open page reloads itself into the "after" view.
    deliver_with_pod(tenant, stops[1], shipments[1])
    expect(page.locator("h1")).to_have_text("Entregado", timeout=5000)
    expect(page.locator("#pod")).to_contain_text("Con el conserje")
    expect(page.locator("#pod img").first).to_have_js_property("naturalWidth", 4)
    expect(page.locator("#map-section")).to_be_hidden()
    page.locator("label[for=stars-5]").click()
    page.locator("#rate-comment").fill("Muy amable")
    page.get_by_role("button", name="Enviar calificación").click()
    expect(page.locator("#done-notice")).to_have_text("Gracias por tu calificación.")
    expect(page.locator("#rate")).to_have_count(0)
    assert axe_violations(page) == []
    shoot(page, "es-after")
    assert page.csp_violations == []
    assert all("tile.openstreetmap.org" in url for url in blocked_requests)
    page.context.close()


def test_english_phone_reschedule_and_after_delivery(
    asgi_live_server, tenant, device_for, browser, blocked_requests
):
    server = asgi_live_server
    _route, stops, shipments, _phone = branded_world(tenant, device_for)
    _link, token = link_for(tenant.organization, shipments[2])
    page = phone_page(browser, blocked_requests, locale="en-US")
    page.goto(f"{server.url}/t/{token}")
    expect(page.locator("h1")).to_have_text("Out for delivery")
    expect(page.locator(".eta-text")).to_have_text(re.compile(r"^Between .+ and .+$"))
    expect(page.locator("[data-bind=stops_before_text]")).to_have_text("2 stops before yours")
    expect(page.locator("[data-bind=distance_text]")).to_have_text(re.compile(r"about \d+ km"))
    assert axe_violations(page) == []
    shoot(page, "en-before")

    page.locator("#reschedule summary").click()
    page.locator("#reschedule input[type=radio]").first.check()
    page.get_by_role("button", name="Reschedule").click()
    expect(page.locator("#done-notice")).to_contain_text("moved to the time you chose")
    expect(page.locator("h1")).to_have_text("At our depot")
    expect(page.locator("#timeline")).to_contain_text("Rescheduled")
    expect(page.locator("#reschedule")).to_be_visible()  # may move it again
    expect(page.locator("#eta")).to_be_visible()  # the chosen window, as promised
    shoot(page, "en-rescheduled")

    # Another recipient of the same route, delivered: the English "after" view.
    _link, delivered_token = link_for(tenant.organization, shipments[0])
    deliver_with_pod(tenant, stops[0], shipments[0])
    page.goto(f"{server.url}/t/{delivered_token}")
    expect(page.locator("h1")).to_have_text("Delivered")
    expect(page.locator("#pod")).to_contain_text("Ana Rojas")
    expect(page.locator("#rate")).to_be_visible()
    assert axe_violations(page) == []
    shoot(page, "en-after")
    assert page.csp_violations == []
    page.context.close()


def test_works_with_javascript_off(asgi_live_server, tenant, device_for, browser):
    _route, _stops, shipments, _phone = branded_world(tenant, device_for)
    _link, token = link_for(tenant.organization, shipments[1])
    context = browser.new_context(viewport=PHONE, java_script_enabled=False, locale="es-CL")
    page = context.new_page()
    page.goto(f"{asgi_live_server.url}/t/{token}")
    expect(page.locator("h1")).to_have_text("En reparto")
    expect(page.locator(".eta-text")).to_have_text(re.compile(r"^Entre las"))
    page.locator("#instructions-text").fill("Dejar con el vecino del 12")
    page.get_by_role("button", name="Guardar instrucciones").click()
    expect(page.locator("#done-notice")).to_be_visible()
    page.goto(f"{asgi_live_server.url}/t/{'A' * 32}")
    expect(page.locator("h1")).to_have_text("Este enlace de seguimiento no está disponible")
    context.close()
