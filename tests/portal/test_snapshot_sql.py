"""The console snapshot's vehicles and routes written by PostgreSQL (portal/snapshot_sql.py)
against the Python path they replace (kept here as the reference: the code of
portal/selectors.py before issue 19), on the same rows: in-progress, planned, past and other
carriers' routes, vehicles with no route or no position, positions from the vehicle's tracker
and from the driver's phone (the newer wins), microseconds, cancelled and late stops, a
carrier user's narrowing and another tenant's rows."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from carriers.models import Vehicle
from control_tower.numbers import finite_or_none
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from portal import selectors
from tests.factories import (
    CarrierFactory,
    DeviceFactory,
    DriverFactory,
    HubFactory,
    RouteFactory,
    VehicleFactory,
    stop_with_shipments,
)
from tracking.models import DevicePosition, RouteStatus, StopStatus
from tracking.route_summary import iso, last_fix, newest_by, positions, route_rows, summary_of_row

pytestmark = pytest.mark.django_db


# --- the reference: the snapshot's lists as the Python path built them ----------------------


def _route_preference(row: dict, today) -> tuple:
    return (
        row["status"] == RouteStatus.IN_PROGRESS,
        row["date"] == today and row["status"] == RouteStatus.PLANNED,
        row["date"],
    )


def _vehicle(vehicle: dict, route: dict | None, position: dict | None) -> dict:
    speed = position["speed_mps"] if position else None
    coordinate = selectors._coordinate
    return {
        "id": vehicle["id"],
        "label": vehicle["plate"],
        "carrier": vehicle["carrier_id"],
        "route": route["id"] if route else None,
        "driver": route["driver_id"] if route else None,
        "driver_name": route["driver__name"] if route else None,
        "lat": coordinate(position["lat"]) if position else None,
        "lon": coordinate(position["lon"]) if position else None,
        "heading": finite_or_none(position["heading_deg"]) if position else None,
        "speed_kmh": finite_or_none(None if speed is None else speed * 3.6, digits=1),
        "battery": position["battery_pct"] if position else None,
        "fix_time": iso(position["fix_time"]) if position else None,
    }


def reference_lists(actor, now) -> tuple[list, list]:
    today = now.astimezone(actor.organization.zone).date()
    vehicles = visible_to(actor, Vehicle).filter(is_active=True).order_by("plate")
    rows = route_rows(selectors.console_routes(actor=actor, today=today))
    found = positions(visible_to(actor, DevicePosition))
    by_vehicle, by_driver = newest_by(found, "vehicle"), newest_by(found, "driver")
    route_of_vehicle: dict = {}
    for row in rows:
        if row["vehicle_id"] is None:
            continue
        current = route_of_vehicle.get(row["vehicle_id"])
        if current is None or _route_preference(row, today) > _route_preference(current, today):
            route_of_vehicle[row["vehicle_id"]] = row
    vehicle_list = []
    for vehicle in vehicles.values("id", "plate", "carrier_id"):
        route = route_of_vehicle.get(vehicle["id"])
        candidates = [by_vehicle.get(vehicle["id"])]
        if route is not None:
            candidates.append(by_driver.get(route["driver_id"]))
        hits = [c for c in candidates if c is not None]
        position = max(hits, key=lambda c: c["fix_time"]) if hits else None
        vehicle_list.append(_vehicle(vehicle, route, position))
    routes = [summary_of_row(row, last_fix(row, by_vehicle, by_driver)) for row in rows]
    return vehicle_list, routes


# --- the rows -------------------------------------------------------------------------------


def fix(device, *, lat, lon, ago_s, speed=None, heading=None, battery=None):
    at = timezone.now() - dt.timedelta(seconds=ago_s, microseconds=123457 * (ago_s % 3))
    DevicePosition.dangerously_unscoped.update_or_create(
        device=device,
        defaults={
            "organization": device.organization,
            "fix_time": at,
            "received_at": at,
            "location": Point(lon, lat, srid=4326),
            "speed_mps": speed,
            "heading_deg": heading,
            "battery_pct": battery,
            "source": "native",
        },
    )


def world(tenant, other_tenant):
    org = tenant.organization
    other_carrier = CarrierFactory(organization=org)
    HubFactory(organization=org)
    today = timezone.now().astimezone(org.zone).date()
    for n, carrier in enumerate([tenant.carrier, tenant.carrier, other_carrier, tenant.carrier]):
        vehicle = VehicleFactory(organization=org, carrier=carrier, plate=f"ZZ-{9 - n}")
        driver = DriverFactory(organization=org, carrier=carrier)
        running = RouteFactory(
            organization=org,
            carrier=carrier,
            vehicle=vehicle,
            driver=driver,
            date=today,
            status=RouteStatus.IN_PROGRESS if n != 1 else RouteStatus.PLANNED,
        )
        # An older route of the same vehicle (the first vehicle's is still in progress).
        RouteFactory(
            organization=org,
            carrier=carrier,
            vehicle=vehicle,
            driver=driver,
            date=today - dt.timedelta(days=1),
            status=RouteStatus.IN_PROGRESS if n == 0 else RouteStatus.COMPLETED,
        )
        now = timezone.now()
        late = stop_with_shipments(route=running, sequence=1, window_end=now)
        late.eta, late.eta_latest = now + dt.timedelta(minutes=5), now + dt.timedelta(minutes=9)
        late.save(update_fields=["eta", "eta_latest"])
        stop_with_shipments(route=running, sequence=2, window_end=now + dt.timedelta(hours=2))
        stop_with_shipments(route=running, sequence=3, status=StopStatus.CANCELLED)
        stop_with_shipments(route=running, sequence=4, status=StopStatus.COMPLETED)
        tracker = DeviceFactory(organization=org, carrier=carrier, vehicle=vehicle)
        phone = DeviceFactory(organization=org, carrier=carrier, driver=driver)
        if n != 3:  # the last vehicle's tracker has no position
            fix(
                tracker,
                lat=-29.9012345678 - n / 1000,
                lon=-71.25,
                ago_s=60 + n,
                speed=5.144444 * (n + 1),
                heading=None if n == 2 else 93.5,
                battery=40 + n,
            )
        fix(
            phone,
            lat=-29.95,
            lon=-71.2999999,
            ago_s=30 if n % 2 else 120,
            speed=0.0,
            heading=float("nan") if n == 1 else 10,
            battery=None,
        )
    VehicleFactory(organization=org, carrier=tenant.carrier, plate="AA-0")  # no route, no fix
    VehicleFactory(organization=org, carrier=tenant.carrier, plate="AA-1", is_active=False)
    # Another tenant's fleet: never in ours.
    theirs = VehicleFactory(organization=other_tenant.organization, carrier=other_tenant.carrier)
    RouteFactory(
        organization=other_tenant.organization,
        carrier=other_tenant.carrier,
        vehicle=theirs,
        date=today,
        status=RouteStatus.IN_PROGRESS,
    )
    fix(
        DeviceFactory(
            organization=other_tenant.organization, carrier=other_tenant.carrier, vehicle=theirs
        ),
        lat=-30.0,
        lon=-71.0,
        ago_s=5,
        speed=3.0,
    )


@pytest.mark.parametrize("role", [Role.DISPATCHER, Role.CARRIER_USER])
def test_the_sql_snapshot_equals_the_python_one(tenant, other_tenant, role):
    world(tenant, other_tenant)
    actor = actor_for_membership(tenant.members[role])
    now = timezone.now()
    with organization_scope(tenant.organization):
        body = json.loads(selectors.console_snapshot_json(actor=actor, now=now))
        vehicles, routes = reference_lists(actor, now)
    assert body["vehicles"] == vehicles
    assert body["routes"] == routes
    assert list(body) == [
        "v",
        "seq",
        "generated_at",
        "organization",
        "carriers",
        "hubs",
        "vehicles",
        "routes",
    ]
    # The rows really cover the cases (not an empty comparison).
    assert len(vehicles) == (5 if role == Role.DISPATCHER else 4)
    assert {v["fix_time"] is None for v in vehicles} == {True, False}
    assert any(v["heading"] is None and v["fix_time"] for v in vehicles)  # NaN or none
    assert any(r["late_stops"] for r in routes) and any(r["next_eta"] for r in routes)
