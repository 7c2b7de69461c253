"""GET /api/v1/console/snapshot/ and /api/v1/console/routes/<id>/ (docs/REALTIME.md)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import LineString, Point
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carriers.models import Device
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import (
    CarrierFactory,
    DeviceFactory,
    DriverFactory,
    HubFactory,
    RouteFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tracking.models import DevicePosition, StopStatus
from tracking.services import stop_complete

pytestmark = pytest.mark.django_db

SNAPSHOT = "/api/v1/console/snapshot/"


def route_url(route) -> str:
    return f"/api/v1/console/routes/{route.pk}/"


def position(device, *, lat, lon, minutes_ago=1, speed=5.0):
    at = timezone.now() - dt.timedelta(minutes=minutes_ago)
    return DevicePosition.dangerously_unscoped.create(
        organization=device.organization,
        device=device,
        fix_time=at,
        received_at=at,
        location=Point(lon, lat, srid=4326),
        speed_mps=speed,
        heading_deg=90,
        battery_pct=55,
        source="native",
    )


def fleet(tenant, *, routes=2, carrier=None):
    """Routes of today with a vehicle, a driver, a positioned device and three stops each."""
    org, carrier = tenant.organization, carrier or tenant.carrier
    made = []
    for i in range(routes):
        vehicle = VehicleFactory(organization=org, carrier=carrier)
        driver = DriverFactory(organization=org, carrier=carrier)
        route = RouteFactory(
            organization=org,
            carrier=carrier,
            vehicle=vehicle,
            driver=driver,
            planned_geometry=LineString((-71.25, -29.90), (-71.26, -29.91), (-71.27, -29.92)),
        )
        now = timezone.now()
        late = stop_with_shipments(  # ETA past its window end: late
            route=route,
            sequence=1,
            window_end=now + dt.timedelta(minutes=10),
            location=Point(-71.26, -29.91, srid=4326),
        )
        late.eta, late.eta_latest = now + dt.timedelta(minutes=5), now + dt.timedelta(minutes=30)
        late.save(update_fields=["eta", "eta_latest"])
        stop_with_shipments(route=route, sequence=2, window_end=now + dt.timedelta(hours=3))
        stop_with_shipments(route=route, sequence=3, status=StopStatus.CANCELLED)
        device = DeviceFactory(organization=org, carrier=carrier, vehicle=vehicle)
        position(device, lat=-29.9 - i * 0.001, lon=-71.25)
        made.append(route)
    return made


def test_the_snapshot_has_the_contracts_fields(tenant, api_client_for):
    route, _ = fleet(tenant)
    HubFactory(organization=tenant.organization)
    parked = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    response = api_client_for(tenant.user(Role.DISPATCHER)).get(SNAPSHOT)
    assert response.status_code == 200
    body = response.json()
    assert body["v"] == 1 and isinstance(body["seq"], int)
    assert body["organization"]["slug"] == "acme"
    assert body["organization"]["brand_color"].startswith("#")
    assert {c["id"] for c in body["carriers"]} == {tenant.carrier.pk}
    assert len(body["hubs"]) >= 1 and {"id", "code", "name", "lat", "lon"} <= set(body["hubs"][0])
    vehicles = {v["id"]: v for v in body["vehicles"]}
    assert vehicles[parked.pk]["lat"] is None and vehicles[parked.pk]["fix_time"] is None
    moving = vehicles[route.vehicle_id]
    assert moving["route"] == route.pk and moving["driver"] == route.driver_id
    assert moving["label"] == route.vehicle.plate and moving["carrier"] == tenant.carrier.pk
    assert moving["lat"] == pytest.approx(-29.9) and moving["speed_kmh"] == 18.0
    assert moving["battery"] == 55 and moving["heading"] == 90
    summary = next(r for r in body["routes"] if r["id"] == route.pk)
    assert summary["stops_total"] == 2 and summary["stops_done"] == 0
    assert summary["late_stops"] == 1 and summary["next_eta"] is not None
    assert summary["last_fix_time"] == moving["fix_time"]
    assert {"code", "status", "date", "carrier", "hub", "vehicle", "driver"} <= set(summary)


def test_carrier_users_see_only_their_carrier(tenant, api_client_for):
    other = CarrierFactory(organization=tenant.organization)
    (ours,) = fleet(tenant, routes=1)
    (theirs,) = fleet(tenant, routes=1, carrier=other)
    client = api_client_for(tenant.user(Role.CARRIER_USER))
    body = client.get(SNAPSHOT).json()
    assert [r["id"] for r in body["routes"]] == [ours.pk]
    assert {v["id"] for v in body["vehicles"]} == {ours.vehicle_id}
    assert [c["id"] for c in body["carriers"]] == [tenant.carrier.pk]
    assert client.get(route_url(ours)).status_code == 200
    assert client.get(route_url(theirs)).status_code == 404


def test_other_organizations_and_drivers_get_nothing(tenant, other_tenant, api_client_for):
    (ours,) = fleet(tenant, routes=1)
    stranger = api_client_for(other_tenant.user(Role.DISPATCHER))
    assert stranger.get(route_url(ours)).status_code == 404
    assert ours.pk not in [r["id"] for r in stranger.get(SNAPSHOT).json()["routes"]]
    driver = api_client_for(tenant.user(Role.DRIVER))
    assert driver.get(SNAPSHOT).status_code == 403
    assert driver.get(route_url(ours)).status_code == 403
    anonymous = api_client_for()
    assert anonymous.get(SNAPSHOT).status_code in (401, 403)


def test_the_snapshot_costs_a_fixed_number_of_queries(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.DISPATCHER))
    fleet(tenant, routes=2)
    with CaptureQueriesContext(connection) as small:
        assert client.get(SNAPSHOT).status_code == 200
    fleet(tenant, routes=8)
    with CaptureQueriesContext(connection) as large:
        assert len(client.get(SNAPSHOT).json()["routes"]) == 10
    # Session, user and membership lookups (~5) plus eight reads, whatever the fleet size.
    assert len(large) == len(small) <= 14
    (route, *_) = fleet(tenant, routes=1)
    with CaptureQueriesContext(connection) as one:
        assert client.get(route_url(route)).status_code == 200
    assert len(one) <= 14


def test_the_route_has_its_path_driven_part_and_stops(tenant, api_client_for):
    (route,) = fleet(tenant, routes=1)
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        stop_complete(stop=route.stops.order_by("sequence").first(), actor=actor)
    body = api_client_for(tenant.user(Role.DISPATCHER)).get(route_url(route)).json()
    assert body["path"] == [[-29.9, -71.25], [-29.91, -71.26], [-29.92, -71.27]]
    assert body["done_until"] == 1  # the vertex nearest the completed first stop
    assert body["stops_done"] == 1 and body["status"] == "in_progress"
    stops = body["stops"]
    assert [s["sequence"] for s in stops] == [1, 2, 3]
    assert stops[0]["status"] == "completed" and stops[0]["shipments"][0]["status"] == "delivered"
    assert {
        "eta",
        "eta_earliest",
        "eta_latest",
        "window_start",
        "window_end",
        "late",
        "recipient",
        "address",
        "lat",
        "lon",
    } <= set(stops[0])
    assert stops[0]["recipient"]


def test_the_routes_stops_say_when_the_recipient_is_not_home(tenant, api_client_for):
    """The console flags the stop in the route's list and on the map (console_customer.js)."""
    from control_tower.ratelimit import ratelimit_reset
    from tracking.services.customer_actions import customer_not_home
    from tracking.services.tracking_links import link_issue

    ratelimit_reset("track-action")
    (route,) = fleet(tenant, routes=1)
    with organization_scope(tenant.organization):
        second = route.stops.order_by("sequence")[1]
        link, _ = link_issue(second.shipments.first(), actor=None)
    customer_not_home(link, key="snapshot-away-01")
    stops = api_client_for(tenant.user(Role.DISPATCHER)).get(route_url(route)).json()["stops"]
    assert [s["recipient_away_at"] is not None for s in stops] == [False, True, False]


@pytest.mark.django_db(transaction=True)
def test_the_snapshot_seq_is_not_after_later_deltas(tenant, api_client_for):
    from asgiref.sync import async_to_sync
    from channels.db import database_sync_to_async

    from tests.portal.test_events_socket import communicator, session_cookie

    (route,) = fleet(tenant, routes=1)
    client = api_client_for(tenant.user(Role.DISPATCHER))
    cookie = session_cookie(tenant.user(Role.DISPATCHER))
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])

    def complete_first_stop():
        with organization_scope(tenant.organization):
            stop_complete(stop=route.stops.order_by("sequence").first(), actor=actor)

    async def run():
        socket = communicator(cookie)
        assert (await socket.connect())[0]
        await socket.receive_json_from(timeout=5)  # hello
        snapshot = (await database_sync_to_async(client.get)(SNAPSHOT)).json()
        await database_sync_to_async(complete_first_stop)()
        delta = await socket.receive_json_from(timeout=5)
        assert delta["seq"] > snapshot["seq"]
        kinds = {delta["type"]}
        while not await socket.receive_nothing(timeout=0.5):
            kinds.add((await socket.receive_json_from(timeout=1))["type"])
        assert {"stop.status", "route.changed", "route.status"} <= kinds
        await socket.disconnect()

    async_to_sync(run)()
    assert Device.dangerously_unscoped.filter(vehicle=route.vehicle).exists()
