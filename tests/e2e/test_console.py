"""The dispatcher console in a real Chromium, served by the real ASGI application (uvicorn, with
websockets) on the test database: the map and the list from the snapshot, a ping through the
public ingest API moving a marker live, reassigning a stop, search, filters, the keyboard, a
carrier user's and another tenant's view, and streets drawn from the road network when tiles
are out of reach. Screenshots of every test land in test-artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.contrib.gis.geos import LineString
from playwright.sync_api import Page, expect

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.conftest import Tenant, build_tenant
from tests.e2e.conftest import login
from tests.factories import (
    PASSWORD,
    CarrierFactory,
    DriverFactory,
    HubFactory,
    RouteFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tests.portal.road_loop import grid, load_loop_network
from tracking.models import Stop

pytestmark = pytest.mark.django_db(transaction=True)

SANTIAGO = ZoneInfo("America/Santiago")
MARKERS = ".leaflet-marker-pane .ct-vehicle"
ROUTE_ITEMS = "#route-list li:not([hidden]) .route-item"


@dataclass
class World:
    acme: Tenant
    globex: Tenant
    van: object  # acme-fleet's vehicle on R-NORTE (in progress)
    truck: object  # Andes' vehicle on R-SUR (planned)
    north: object
    south: object
    late_stop: object
    moving_stop: object
    andes: object
    tokens: dict  # vehicle pk -> device token


def post_pings(server, token: str, fixes: list[dict]) -> dict:
    """Through the public native batch API, as a phone would."""
    response = httpx.post(
        f"{server.url}/api/v1/ingest/pings",
        json=fixes,
        headers={"Authorization": f"Device {token}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def fix_at(point, *, seconds_ago: float, heading: float = 90, speed: float = 8) -> dict:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)
    return {
        "time": at.isoformat(),
        "lat": point.y,
        "lon": point.x,
        "accuracy": 5,
        "speed": speed,
        "heading": heading,
        "battery": 76,
    }


@pytest.fixture
def world(asgi_live_server) -> World:
    """Acme: two carriers, two vehicles reporting positions, two of today's routes (one in
    progress with a late stop), shipments on the stops. Globex: people only. Everything is
    committed so the server sees it; positions arrive through the ingest API."""
    from carriers.services import device_create

    acme, globex = build_tenant("acme"), build_tenant("globex")
    org = acme.organization
    andes = CarrierFactory(organization=org, code="andes", name="Andes Logística")
    today = dt.datetime.now(SANTIAGO).date()
    now = dt.datetime.now(dt.UTC)
    hub = HubFactory(organization=org, code="LS1", name="La Serena Centro", location=grid(0, 0))
    van = VehicleFactory(organization=org, carrier=acme.carrier, plate="VAN-101")
    truck = VehicleFactory(organization=org, carrier=andes, plate="TRK-202")
    ana = DriverFactory(organization=org, carrier=acme.carrier, name="Ana Rojas")
    beto = DriverFactory(organization=org, carrier=andes, name="Beto Díaz")
    north = RouteFactory(
        organization=org, code="R-NORTE", date=today, hub=hub, carrier=acme.carrier,
        vehicle=van, driver=ana, status="in_progress",
        planned_geometry=LineString([grid(*xy) for xy in ((0, 0), (0, 1), (1, 1), (2, 1), (3, 1))]),
    )  # fmt: skip
    south = RouteFactory(
        organization=org, code="R-SUR", date=today, hub=hub, carrier=andes,
        vehicle=truck, driver=beto, status="planned",
    )  # fmt: skip
    stop_with_shipments(
        route=north, sequence=1, location=grid(1, 1), address="Calle Uno 1",
        status="completed", actual_arrival=now - dt.timedelta(minutes=40),
        actual_departure=now - dt.timedelta(minutes=38),
        window_start=now - dt.timedelta(hours=1), window_end=now + dt.timedelta(hours=1),
    )  # fmt: skip
    late_stop = stop_with_shipments(
        route=north, sequence=2, location=grid(2, 1), address="Calle Dos 2",
        window_start=now - dt.timedelta(hours=2), window_end=now - dt.timedelta(minutes=30),
        eta=now + dt.timedelta(minutes=10), eta_earliest=now + dt.timedelta(minutes=5),
        eta_latest=now + dt.timedelta(minutes=20),
    )  # fmt: skip
    moving_stop = stop_with_shipments(
        route=north, sequence=3, location=grid(3, 1), address="Calle Tres 3",
        window_start=now, window_end=now + dt.timedelta(hours=3),
        eta=now + dt.timedelta(minutes=30),
    )  # fmt: skip
    for sequence, x in ((1, 1), (2, 2)):
        stop_with_shipments(
            route=south, sequence=sequence, location=grid(x, 0), address=f"Pasaje Sur {x}",
            window_start=now, window_end=now + dt.timedelta(hours=4),
        )  # fmt: skip
    tokens = {}
    with organization_scope(org):
        for vehicle, driver in ((van, ana), (truck, beto)):
            _device, token = device_create(
                organization=org, carrier=vehicle.carrier, vehicle=vehicle, driver=driver,
                name=f"{vehicle.plate} phone", kind="driver_app",
            )  # fmt: skip
            tokens[vehicle.pk] = token
    post_pings(asgi_live_server, tokens[van.pk], [fix_at(grid(1.5, 1), seconds_ago=60)])
    post_pings(asgi_live_server, tokens[truck.pk], [fix_at(grid(0.5, 0), seconds_ago=90)])
    return World(acme, globex, van, truck, north, south, late_stop, moving_stop, andes, tokens)


def open_console(page: Page, server, user) -> Page:
    login(page, server, user.username, PASSWORD)
    expect(page).to_have_url(f"{server.url}/")
    page.get_by_role("link", name="Dispatcher console").click()
    page.wait_for_url(f"{server.url}/console/")
    expect(page.locator("#live-status")).to_have_text("Live")
    return page


def route_item(page: Page, code: str):
    return page.locator("#route-list .route-item").filter(has_text=code)


def test_dispatcher_sees_vehicles_and_routes_and_a_ping_moves_its_marker_live(
    asgi_live_server, world, page
):
    open_console(page, asgi_live_server, world.acme.user(Role.DISPATCHER))

    expect(page.locator(MARKERS)).to_have_count(2)
    assert page.evaluate("ctConsole.markerCount()") == 2
    expect(page.locator("#org-name")).to_have_text("Acme")
    expect(page.locator(ROUTE_ITEMS)).to_have_count(2)
    north = route_item(page, "R-NORTE")
    expect(north).to_contain_text("1/3")
    expect(north).to_contain_text("1 late")
    expect(north).to_contain_text("Ana Rojas")
    expect(north).to_contain_text(re.compile(r"\d+ (s|min) ago"))
    expect(route_item(page, "R-SUR")).to_contain_text("0/2")
    expect(page.locator("#alerts-empty")).to_have_text("No alerts")

    start = page.evaluate(f"ctConsole.markerLatLng({world.van.pk})")
    assert start["lat"] == pytest.approx(grid(1.5, 1).y)
    target = grid(3, 0.5)
    post_pings(
        asgi_live_server,
        world.tokens[world.van.pk],
        [fix_at(target, seconds_ago=1, heading=180, speed=9)],
    )
    accepted = time.monotonic()
    page.wait_for_function(
        """([id, lat, lon]) => {
            const p = ctConsole.markerLatLng(id);
            return p && Math.abs(p.lat - lat) < 1e-6 && Math.abs(p.lng - lon) < 1e-6;
        }""",
        arg=[world.van.pk, target.y, target.x],
        timeout=2000,
    )
    assert time.monotonic() - accepted < 2.0
    assert page.evaluate(f"ctConsole.state.vehicles.get({world.van.pk}).heading") == 180
    # The other vehicle did not move, and no delta was lost or re-synced.
    truck = page.evaluate(f"ctConsole.markerLatLng({world.truck.pk})")
    assert truck["lat"] == pytest.approx(grid(0.5, 0).y)
    assert page.evaluate("ctConsole.state.stats.resyncs") == 1  # the initial load only

    # Clicking the vehicle shows its details, live.
    page.locator(f"{MARKERS}[data-vehicle-id='{world.van.pk}']").click()
    details = page.locator("#details-body")
    expect(details).to_contain_text("Vehicle VAN-101")
    expect(details).to_contain_text("32 km/h")
    expect(details).to_contain_text("76 %")
    expect(details).to_contain_text("R-NORTE")


def test_reassigning_a_stop_in_the_ui_updates_both_routes(asgi_live_server, world, page):
    open_console(page, asgi_live_server, world.acme.user(Role.DISPATCHER))
    route_item(page, "R-NORTE").click()
    details = page.locator("#details-body")
    expect(details.locator("#route-title")).to_have_text("Route R-NORTE")
    expect(page.locator(".leaflet-overlay-pane path.ct-stop")).to_have_count(3)

    details.locator(f"[data-stop-id='{world.moving_stop.pk}']").click()
    expect(details.locator("#stop-title")).to_have_text("Stop 3 of route R-NORTE")
    target = page.get_by_label("Move to route")
    expect(target.locator("option")).to_have_count(1)  # the other active route only
    expect(target.locator("option")).to_contain_text("R-SUR")
    target.select_option(value=str(world.south.pk))
    page.get_by_role("button", name="Reassign").click()

    expect(page.locator("#flash")).to_contain_text("Stop moved to route R-SUR")
    expect(route_item(page, "R-NORTE")).to_contain_text("1/2")
    expect(route_item(page, "R-SUR")).to_contain_text("0/3")
    expect(details.locator("#route-title")).to_have_text("Route R-SUR")
    expect(page.locator(".leaflet-overlay-pane path.ct-stop")).to_have_count(3)
    moved = Stop.dangerously_unscoped.get(pk=world.moving_stop.pk)
    assert moved.route_id == world.south.pk


def test_a_refused_reassignment_shows_the_apis_error(asgi_live_server, world, page):
    open_console(page, asgi_live_server, world.acme.user(Role.DISPATCHER))
    page.evaluate(f"ctConsole.openStop({world.late_stop.pk})")
    details = page.locator("#details-body")
    expect(details.locator("#stop-title")).to_have_text("Stop 2 of route R-NORTE")
    # The stop is finished meanwhile (another dispatcher, the driver's phone...): a 409.
    Stop.dangerously_unscoped.filter(pk=world.late_stop.pk).update(status="completed")
    page.get_by_role("button", name="Reassign").click()
    expect(details.get_by_role("alert")).not_to_be_empty()
    assert Stop.dangerously_unscoped.get(pk=world.late_stop.pk).route_id == world.north.pk


def test_search_by_reference_opens_the_route_and_the_stop(asgi_live_server, world, page):
    with organization_scope(world.acme.organization):
        shipment = world.late_stop.shipments.get()
    open_console(page, asgi_live_server, world.acme.user(Role.DISPATCHER))
    page.get_by_label("Find a shipment").fill(shipment.reference)
    page.get_by_role("button", name="Search").click()

    details = page.locator("#details-body")
    expect(details.locator("#stop-title")).to_have_text("Stop 2 of route R-NORTE")
    expect(details).to_contain_text(shipment.reference)
    expect(details).to_contain_text("LATE")
    expect(details).to_contain_text("Calle Dos 2")
    expect(route_item(page, "R-NORTE")).to_have_attribute("aria-current", "true")
    # The planned line: driven up to the last finished stop (vertex 2), the rest still to go.
    expect(page.locator(".leaflet-overlay-pane path.route-done")).to_have_count(1)
    expect(page.locator(".leaflet-overlay-pane path.route-remaining")).to_have_count(1)
    assert page.evaluate("ctConsole.state.openRoute.done_until") == 2


def test_filters_by_carrier_and_late_only_narrow_the_list(asgi_live_server, world, page):
    open_console(page, asgi_live_server, world.acme.user(Role.DISPATCHER))
    expect(page.locator(ROUTE_ITEMS)).to_have_count(2)

    page.get_by_label("Carrier").select_option(label="Andes Logística")
    expect(page.locator(ROUTE_ITEMS)).to_have_count(1)
    expect(page.locator(ROUTE_ITEMS)).to_contain_text("R-SUR")
    expect(page.locator("#route-count")).to_have_text("(1 of 2)")

    page.get_by_label("Carrier").select_option(label="All carriers")
    page.get_by_label("Late only").check()
    expect(page.locator(ROUTE_ITEMS)).to_have_count(1)
    expect(page.locator(ROUTE_ITEMS)).to_contain_text("R-NORTE")

    page.get_by_label("Status").select_option(label="Planned")
    expect(page.locator(ROUTE_ITEMS)).to_have_count(0)
    expect(page.locator("#routes-empty")).to_have_text("No routes match these filters.")


def test_keyboard_tab_reaches_the_route_list_and_enter_opens_a_route(asgi_live_server, world, page):
    open_console(page, asgi_live_server, world.acme.user(Role.DISPATCHER))
    expect(page.locator(ROUTE_ITEMS)).to_have_count(2)
    page.locator("#search-input").focus()
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('route-item')"):
            break
    focused = page.locator(".route-item:focus")
    expect(focused).to_contain_text("R-NORTE")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", "")  # a visible focus ring

    page.keyboard.press("ArrowDown")
    expect(page.locator(".route-item:focus")).to_contain_text("R-SUR")
    page.keyboard.press("Enter")
    expect(page.locator("#details-body #route-title")).to_have_text("Route R-SUR")
    expect(route_item(page, "R-SUR")).to_have_attribute("aria-current", "true")


def test_a_carrier_user_sees_only_their_carriers_vehicles_and_routes(asgi_live_server, world, page):
    open_console(page, asgi_live_server, world.acme.user(Role.CARRIER_USER))
    expect(page.locator(MARKERS)).to_have_count(1)
    expect(page.locator(f"{MARKERS}[data-vehicle-id='{world.van.pk}']")).to_have_count(1)
    expect(page.locator(ROUTE_ITEMS)).to_have_count(1)
    expect(page.locator(ROUTE_ITEMS)).to_contain_text("R-NORTE")
    expect(page.locator("#route-list")).not_to_contain_text("R-SUR")


def test_another_tenants_dispatcher_sees_none_of_it(asgi_live_server, world, page):
    open_console(page, asgi_live_server, world.globex.user(Role.DISPATCHER))
    expect(page.locator("#org-name")).to_have_text("Globex")
    expect(page.locator("#routes-empty")).to_have_text("No routes today.")
    expect(page.locator("#map-empty")).to_be_visible()
    assert page.evaluate("ctConsole.markerCount()") == 0
    expect(page.locator(MARKERS)).to_have_count(0)

    # A ping of Acme's van while Globex watches: nothing arrives, nothing appears.
    post_pings(asgi_live_server, world.tokens[world.van.pk], [fix_at(grid(2, 1), seconds_ago=1)])
    page.wait_for_timeout(1500)
    assert page.evaluate("ctConsole.markerCount()") == 0
    assert page.evaluate("ctConsole.state.stats.deltas") == 0
    body = page.locator("body")
    for secret in ("R-NORTE", "R-SUR", "VAN-101", "Andes", "Ana Rojas"):
        expect(body).not_to_contain_text(secret)
    # Acme's stop is not Globex's to open.
    response = page.request.get(
        f"{asgi_live_server.url}/api/v1/console/stops/{world.late_stop.pk}/"
    )
    assert response.status == 404


def test_tiles_out_of_reach_streets_are_drawn_from_the_road_network(
    asgi_live_server, world, page, blocked_requests
):
    load_loop_network()
    open_console(page, asgi_live_server, world.acme.user(Role.DISPATCHER))
    # Tiles are requested from the internet and aborted (the context lets nothing out).
    page.wait_for_function("() => ctConsole.state.streets.tileErrors > 0")
    assert any("tile.openstreetmap.org" in url for url in blocked_requests)
    expect(page.locator("#map-offline")).to_be_visible()
    page.wait_for_function("() => ctConsole.state.streets.features > 0")
    assert page.locator(".leaflet-overlay-pane canvas").count() >= 1
    expect(page.locator(".leaflet-control-attribution")).to_contain_text(
        "© OpenStreetMap contributors"
    )

    # Panning loads the streets of the new view (debounced).
    loads = page.evaluate("ctConsole.state.streets.loads")
    page.evaluate("ctConsole.map.panBy([120, 80], {animate: false})")
    page.wait_for_function(f"() => ctConsole.state.streets.loads > {loads}")
