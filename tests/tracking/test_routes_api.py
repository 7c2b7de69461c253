import datetime as dt

import pytest
from django.utils import timezone

from control_tower.tenancy.roles import Role
from tests.factories import (
    DriverFactory,
    HubFactory,
    RouteFactory,
    ShipmentFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tracking.models import Route, Shipment, Stop, StopShipment

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(tenant, api_client_for):
    return api_client_for(tenant.user(Role.DISPATCHER))


@pytest.fixture
def plan_parts(tenant):
    org = tenant.organization
    hub = HubFactory(organization=org)
    driver = DriverFactory(organization=org, carrier=tenant.carrier)
    vehicle = VehicleFactory(organization=org, carrier=tenant.carrier)
    shipments = [ShipmentFactory(organization=org, status="at_hub") for _ in range(5)]
    return hub, driver, vehicle, shipments


def plan_body(tenant, hub, driver, vehicle, shipments, *, code="R1"):
    return {
        "date": str(timezone.localdate()),
        "routes": [
            {
                "code": code,
                "hub": hub.pk,
                "carrier": tenant.carrier.pk,
                "driver": driver.pk,
                "vehicle": vehicle.pk,
                "planned_start": "2026-11-24T12:00:00Z",
                "planned_end": "2026-11-24T20:00:00Z",
                "planned_geometry": {
                    "type": "LineString",
                    "coordinates": [[-71.25, -29.9], [-71.26, -29.92]],
                },
                "stops": [
                    {
                        "shipment_references": [shipments[0].reference, shipments[1].reference],
                        "window_start": "2026-11-24T13:00:00Z",
                        "window_end": "2026-11-24T15:00:00Z",
                    },
                    {
                        "shipment_references": [shipments[2].reference],
                        "location": {"lat": -29.95, "lon": -71.3},
                        "address": "Calle 1",
                    },
                ],
            }
        ],
    }


def test_a_days_plan_in_one_call(tenant, api, plan_parts):
    hub, driver, vehicle, shipments = plan_parts
    response = api.post(
        "/api/v1/routes/bulk/", plan_body(tenant, hub, driver, vehicle, shipments), format="json"
    )
    assert response.status_code == 201, response.content
    (route,) = response.json()
    assert route["code"] == "R1" and route["stops_total"] == 2 and route["stops_done"] == 0
    assert route["planned_geometry"]["coordinates"][0] == [-71.25, -29.9]
    stops = api.get("/api/v1/stops/", {"route": route["id"], "ordering": "sequence"}).json()
    first, second = stops["results"]
    assert (first["sequence"], second["sequence"]) == (1, 2)
    assert sorted(first["shipments"]) == sorted([shipments[0].pk, shipments[1].pk])
    assert first["location"]["coordinates"] == [-71.27, -29.91]  # from the shipment
    assert second["address"] == "Calle 1"
    carried = Shipment.dangerously_unscoped.filter(pk__in=[s.pk for s in shipments[:3]])
    assert set(carried.values_list("carrier_id", flat=True)) == {tenant.carrier.pk}
    assert set(carried.values_list("hub_id", flat=True)) == {hub.pk}


def test_a_bad_plan_stores_nothing_and_says_where(tenant, api, plan_parts):
    hub, driver, vehicle, shipments = plan_parts
    body = plan_body(tenant, hub, driver, vehicle, shipments)
    second = plan_body(tenant, hub, driver, vehicle, shipments, code="R2")["routes"][0]
    second["stops"] = [{"shipment_references": ["NOPE", shipments[0].reference]}]
    second["vehicle"] = VehicleFactory(organization=tenant.organization).pk  # other carrier
    body["routes"].append(second)
    response = api.post("/api/v1/routes/bulk/", body, format="json")
    assert response.status_code == 400
    errors = response.json()["fields"]["routes"]
    assert set(errors) == {"1"}
    assert "vehicle" in errors["1"]
    messages = " ".join(errors["1"]["stops.0"])
    assert "NOPE" in messages and shipments[0].reference in messages
    assert not Route.dangerously_unscoped.exists() and not Stop.dangerously_unscoped.exists()


def test_shipment_already_on_an_open_route_cannot_be_planned_again(tenant, api, plan_parts):
    hub, driver, vehicle, shipments = plan_parts
    body = plan_body(tenant, hub, driver, vehicle, shipments)
    assert api.post("/api/v1/routes/bulk/", body, format="json").status_code == 201
    again = plan_body(tenant, hub, driver, vehicle, shipments, code="R9")
    response = api.post("/api/v1/routes/bulk/", again, format="json")
    assert response.status_code == 400
    assert "already on an open route" in str(response.json()["fields"])
    same_code = plan_body(tenant, hub, driver, vehicle, shipments[3:4] * 3)
    same_code["routes"][0]["stops"] = [{"shipment_references": [shipments[4].reference]}]
    clash = api.post("/api/v1/routes/bulk/", same_code, format="json")
    assert "already exists" in str(clash.json()["fields"]["routes"]["0"]["code"])


def test_route_life_cycle_moves_shipments(tenant, api):
    route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    first = stop_with_shipments(route=route, sequence=1, count=2)
    second = stop_with_shipments(route=route, sequence=2)
    url = f"/api/v1/routes/{route.pk}/"
    started = api.post(url + "start/").json()
    assert started["status"] == "in_progress" and started["started_at"]
    statuses = set(
        Shipment.dangerously_unscoped.filter(stops__route=route).values_list("status", flat=True)
    )
    assert statuses == {"out_for_delivery"}
    early = api.post(url + "complete/")
    assert early.status_code == 409 and early.json()["error"] == "route_has_open_stops"
    api.post(f"/api/v1/stops/{first.pk}/arrive/", {}, format="json")
    done = api.post(f"/api/v1/stops/{first.pk}/complete/", {}, format="json").json()
    assert done["status"] == "completed" and done["actual_arrival"] <= done["actual_departure"]
    failed = api.post(f"/api/v1/stops/{second.pk}/fail/", {"reason": "not_home"}, format="json")
    assert failed.json()["failure_reason"] == "not_home"
    delivered = Shipment.dangerously_unscoped.filter(stops=first).values_list("status", flat=True)
    assert set(delivered) == {"delivered"}
    assert Shipment.dangerously_unscoped.get(stops=second).status == "attempt_failed"
    completed = api.post(url + "complete/").json()
    assert completed["status"] == "completed" and completed["stops_done"] == 2
    assert api.post(url + "cancel/").status_code == 409


def test_first_stop_event_starts_a_planned_route(tenant, api):
    route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    stop = stop_with_shipments(route=route)
    api.post(f"/api/v1/stops/{stop.pk}/arrive/", {}, format="json")
    route.refresh_from_db()
    assert route.status == "in_progress"


def test_cancel_sends_parcels_back_to_the_hub(tenant, api):
    route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    stop = stop_with_shipments(route=route, count=2)
    api.post(f"/api/v1/routes/{route.pk}/start/")
    assert api.post(f"/api/v1/routes/{route.pk}/cancel/").json()["status"] == "cancelled"
    stop.refresh_from_db()
    assert stop.status == "cancelled"
    assert set(
        Shipment.dangerously_unscoped.filter(stops=stop).values_list("status", flat=True)
    ) == {"at_hub"}


def test_stop_rules(tenant, api):
    route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    stop = stop_with_shipments(route=route)
    bad_reason = api.post(f"/api/v1/stops/{stop.pk}/fail/", {"reason": "aliens"}, format="json")
    assert bad_reason.status_code == 400 and "reason" in bad_reason.json()["fields"]
    api.post(f"/api/v1/stops/{stop.pk}/skip/", {"note": "road closed"}, format="json")
    again = api.post(f"/api/v1/stops/{stop.pk}/arrive/", {}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "illegal_transition"
    assert api.delete(f"/api/v1/stops/{stop.pk}/").status_code == 409


def test_stop_crud_with_shipments(tenant, api):
    route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    a, b = (ShipmentFactory(organization=tenant.organization) for _ in range(2))
    created = api.post(
        "/api/v1/stops/",
        {
            "route": route.pk,
            "sequence": 1,
            "location": {"lat": -29.9, "lon": -71.25},
            "shipments": [a.pk],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    url = f"/api/v1/stops/{created.json()['id']}/"
    updated = api.patch(url, {"shipments": [b.pk]}, format="json").json()
    assert updated["shipments"] == [b.pk]
    assert StopShipment.dangerously_unscoped.count() == 1
    duplicate = api.post(
        "/api/v1/stops/",
        {"route": route.pk, "sequence": 1, "location": {"lat": -29.9, "lon": -71.25}},
        format="json",
    )
    assert duplicate.status_code == 400 and "sequence" in duplicate.json()["fields"]
    other_route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    move = api.patch(url, {"route": other_route.pk}, format="json")
    assert move.status_code == 400 and "reassignment" in str(move.json()["fields"])
    assert api.delete(url).status_code == 204


def test_route_validation(tenant, api):
    from tests.factories import CarrierFactory

    hub = HubFactory(organization=tenant.organization)
    foreign_driver = DriverFactory(
        organization=tenant.organization, carrier=CarrierFactory(organization=tenant.organization)
    )
    response = api.post(
        "/api/v1/routes/",
        {
            "date": "2026-11-24",
            "code": "R1",
            "hub": hub.pk,
            "carrier": tenant.carrier.pk,
            "driver": foreign_driver.pk,
            "planned_start": "2026-11-24T20:00:00Z",
            "planned_end": "2026-11-24T10:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "driver" in response.json()["fields"] or "planned_end" in response.json()["fields"]


def test_route_filters(tenant, api):
    today = timezone.localdate()
    RouteFactory(organization=tenant.organization, carrier=tenant.carrier, date=today)
    RouteFactory(
        organization=tenant.organization, carrier=tenant.carrier, date=today - dt.timedelta(days=3)
    )
    assert api.get("/api/v1/routes/", {"date": str(today)}).json()["count"] == 1
    ranged = api.get("/api/v1/routes/", {"date_from": str(today - dt.timedelta(days=5))})
    assert ranged.json()["count"] == 2
    assert api.get("/api/v1/routes/", {"status": "completed"}).json()["count"] == 0
