"""Today's route on the phone: the driver's own routes of the day with everything a stop needs,
in the driver's language; never another driver's, carrier's or organization's."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.gis.geos import LineString
from django.utils import timezone

from carriers.models import Driver
from control_tower.tenancy.roles import Role
from tests.driver_app.conftest import SIGN_IN, TODAY, phone, sign_in
from tests.factories import DriverFactory, RouteFactory, VehicleFactory, stop_with_shipments
from tracking.models import Shipment, Stop

pytestmark = pytest.mark.django_db


def _driver(tenant) -> Driver:
    return Driver.dangerously_unscoped.get(user=tenant.user(Role.DRIVER))


def _route(tenant, driver, *, code="R-TODAY", day=None, status="planned", stops=2):
    org = tenant.organization
    route = RouteFactory(
        organization=org,
        carrier=driver.carrier,
        driver=driver,
        code=code,
        date=day or timezone.localdate(timezone=org.zone),
        status=status,
        planned_geometry=LineString((-71.25, -29.9), (-71.26, -29.92), srid=4326),
        vehicle=VehicleFactory(organization=org, carrier=driver.carrier, plate=f"V-{code}"[:20]),
    )
    for sequence in range(1, stops + 1):
        stop_with_shipments(
            route=route,
            sequence=sequence,
            window_start=timezone.now(),
            window_end=timezone.now() + dt.timedelta(hours=2),
        )
    return route


def _first_stop(route) -> Stop:
    return Stop.dangerously_unscoped.filter(route=route).order_by("sequence").first()


def test_the_day_lists_the_drivers_routes_with_everything_a_stop_needs(tenant):
    driver = _driver(tenant)
    route = _route(tenant, driver)
    first = _first_stop(route)
    shipment = Shipment.dangerously_unscoped.get(stops=first)
    Shipment.dangerously_unscoped.filter(pk=shipment.pk).update(
        delivery_instructions="Gate code 1234", delivery_pin_hash=make_password("4321")
    )
    token = sign_in(tenant).json()["token"]
    body = phone(token).get(TODAY).json()
    assert body["date"] == timezone.localdate(timezone=tenant.organization.zone).isoformat()
    [day_route] = body["routes"]
    assert day_route["id"] == route.pk and day_route["code"] == "R-TODAY"
    assert day_route["path"] == [[-29.9, -71.25], [-29.92, -71.26]]
    assert day_route["vehicle"]["plate"] == "V-R-TODAY"
    assert day_route["hub"]["code"] == route.hub.code
    assert [s["sequence"] for s in day_route["stops"]] == [1, 2]
    stop = day_route["stops"][0]
    assert stop["address"] == "Calle Larga 12"
    assert stop["window_start"] and stop["window_end"]
    assert stop["navigate_url"] == "geo:-29.92,-71.26?q=-29.92,-71.26(Calle%20Larga%2012)"
    [parcel] = stop["shipments"]
    assert parcel["barcode"] == shipment.barcode
    assert parcel["delivery_instructions"] == "Gate code 1234"
    assert parcel["requires_pin"] is True
    assert "delivery_pin_hash" not in parcel
    assert ["not_home", "Recipient not home"] in body["choices"]["failure_reasons"]
    assert ["front_door", "At the front door"] in body["choices"]["safe_places"]
    assert ["vehicle", "Vehicle issue"] in body["choices"]["incident_kinds"]
    assert body["pod_policy"] == {"photo_required": True, "signature_required": False} or set(
        body["pod_policy"]
    ) == {"photo_required", "signature_required"}


def test_labels_follow_the_phones_language(tenant):
    _route(tenant, _driver(tenant))
    token = sign_in(tenant).json()["token"]
    english = phone(token, language="en").get(TODAY).json()["choices"]
    spanish = phone(token, language="es").get(TODAY).json()["choices"]
    for name, pairs in english.items():
        for (value, label), (es_value, es_label) in zip(pairs, spanish[name], strict=True):
            assert value == es_value
            assert es_label != label, f"{name}.{value} has no Spanish label"


def test_which_routes_make_the_day(tenant):
    driver = _driver(tenant)
    org_today = timezone.localdate(timezone=tenant.organization.zone)
    _route(tenant, driver, code="TODAY")
    _route(tenant, driver, code="CANCELLED", status="cancelled")
    _route(tenant, driver, code="YESTERDAY-RUNNING", day=org_today - dt.timedelta(days=1))
    _route(tenant, driver, code="YESTERDAY-DONE", day=org_today - dt.timedelta(days=1))
    _route(tenant, driver, code="TOMORROW", day=org_today + dt.timedelta(days=1))
    from tracking.models import Route

    Route.dangerously_unscoped.filter(code="YESTERDAY-RUNNING").update(status="in_progress")
    Route.dangerously_unscoped.filter(code="YESTERDAY-DONE").update(status="completed")
    token = sign_in(tenant).json()["token"]
    codes = [r["code"] for r in phone(token).get(TODAY).json()["routes"]]
    assert sorted(codes) == ["TODAY", "YESTERDAY-RUNNING"]


def test_an_empty_day_is_an_empty_list(tenant):
    token = sign_in(tenant).json()["token"]
    body = phone(token).get(TODAY).json()
    assert body["routes"] == []


def test_another_driver_carrier_or_organization_is_out_of_reach(tenant, other_tenant):
    """The phone reads and works only its own driver's routes: another driver of the same
    carrier, another carrier's and another organization's routes and stops answer 404 like
    missing ones, and none of them appear in the day."""
    mine = _route(tenant, _driver(tenant), code="MINE")
    colleague = DriverFactory(organization=tenant.organization, carrier=tenant.carrier)
    theirs = _route(tenant, colleague, code="COLLEAGUE")
    foreign = _route(other_tenant, _driver(other_tenant), code="FOREIGN")
    token = sign_in(tenant).json()["token"]
    client = phone(token)
    assert [r["code"] for r in client.get(TODAY).json()["routes"]] == ["MINE"]
    listed = client.get("/api/v1/routes/").json()["results"]
    assert [r["code"] for r in listed] == ["MINE"]
    for route in (theirs, foreign):
        stop = _first_stop(route)
        assert client.get(f"/api/v1/routes/{route.pk}/").status_code == 404
        for action in ("arrive", "complete", "skip"):
            response = client.post(f"/api/v1/stops/{stop.pk}/{action}/", {}, format="json")
            assert response.status_code == 404, (route.code, action)
        fail = client.post(f"/api/v1/stops/{stop.pk}/fail/", {"reason": "not_home"})
        assert fail.status_code == 404
        assert client.post(f"/api/v1/routes/{route.pk}/start/", {}).status_code == 404
        incident = client.post("/api/v1/incidents/", {"route": route.pk, "kind": "breakdown"})
        assert incident.status_code == 404
        assert Stop.dangerously_unscoped.get(pk=stop.pk).status == "pending"
    own_stop = _first_stop(mine)
    assert client.post(f"/api/v1/stops/{own_stop.pk}/arrive/", {}).status_code == 200
    # The other organization's own driver sees only their route, not ours.
    other_token = sign_in(other_tenant).json()["token"]
    other_codes = [r["code"] for r in phone(other_token).get(TODAY).json()["routes"]]
    assert other_codes == ["FOREIGN"]
    # And the session endpoints answer for the caller's own device only.
    assert phone(other_token).get(SIGN_IN).json()["organization"]["slug"] == "globex"
