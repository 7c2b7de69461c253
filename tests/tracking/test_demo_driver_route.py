"""The demo's route for a person: DRV-001 (driver@demo.example) gets one planned route of a
handful of stops, one parcel asking for a PIN; the live fleet simulator never drives it, by the
rule `worked_in_the_driver_app` (a driver with a login of the driver role), while history
replays still play every route (a person's route nobody worked, PIN included);
`demo_driver_route` prints how to work it."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from io import StringIO

import pytest
from django.contrib.auth.hashers import check_password
from django.core.management import call_command

from carriers.models import Driver
from control_tower.models import Membership, Organization
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from portal.selectors import console_routes
from tracking.models import ProofOfDelivery, Route, RouteStatus, Stop
from tracking.simulation.history import replay_day
from tracking.simulation.person_route import PERSON_PIN, PERSON_STOPS
from tracking.simulation.runner import Simulation, build_timelines
from tracking.simulation.world import World, WorldConfig

DAY = date(2026, 3, 2)
START = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


@pytest.fixture
def demo(db) -> Organization:
    call_command("load_demo", "--date", DAY.isoformat(), "--shipments", "40", stdout=StringIO())
    return Organization.objects.get(slug="demo")


def simulated_routes(organization, tmp_path) -> set[str]:
    """The routes the live simulator would drive (its ground truth; nothing is sent)."""
    path = tmp_path / "truth.jsonl"
    Simulation(
        organization,
        day=DAY,
        start=START,
        config=WorldConfig(seed=3),
        base_url="http://unused",
        truth_path=path,
    ).compute()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {row["route"] for row in rows if row["type"] == "route"}


def test_the_demo_driver_has_one_planned_route_of_a_handful_of_stops(demo):
    with organization_scope(demo):
        driver = Driver.objects.get(user__email="driver@demo.example")
        (route,) = Route.objects.filter(date=DAY, driver=driver)
        assert (route.code, route.status) == ("LSR-APP", RouteStatus.PLANNED)
        assert route.hub.code == "LSR" and route.vehicle is not None
        stops = list(route.stops.order_by("sequence").prefetch_related("shipments"))
        assert len(stops) == PERSON_STOPS
        shipments = [s for stop in stops for s in stop.shipments.all()]
        assert len(shipments) == PERSON_STOPS
        assert all(re.fullmatch(r"[A-Z0-9]{8,20}", s.barcode) for s in shipments)
        with_pin = [s for s in shipments if s.delivery_pin_hash]
        assert len(with_pin) == 1 and check_password(PERSON_PIN, with_pin[0].delivery_pin_hash)
        # Every stop's window is still ahead when the route is planned to leave.
        assert all(stop.window_end > route.planned_start for stop in stops)
        # The other drivers share the rest of the day; none of them is DRV-001.
        others = Route.objects.filter(date=DAY).exclude(pk=route.pk)
        assert others.exists() and not others.filter(driver=driver).exists()
        assert not Stop.objects.filter(route__in=others, shipments__in=shipments).exists()
        # The dispatcher's console lists it with the day's other routes.
        dispatcher = actor_for_membership(
            Membership.objects.get(user__email="dispatcher@demo.example")
        )
        assert route in console_routes(actor=dispatcher, today=DAY)


def test_the_live_simulator_leaves_routes_of_drivers_with_a_login_to_them(demo, tmp_path):
    with organization_scope(demo):
        every_route = {
            route.code
            for route, _plans, _timeline in build_timelines(
                demo, DAY, START, World(WorldConfig(seed=3)), 60
            )
        }
    driven = simulated_routes(demo, tmp_path)
    # History replays and the exceptions evaluation play every route; the live run not
    # the person's.
    assert "LSR-APP" in every_route
    assert driven == every_route - {"LSR-APP"}

    # The rule is the login with the driver role, not the route's name: once driver@demo.example
    # is a dispatcher, the simulator drives DRV-001's route like any other.
    with organization_scope(demo):
        Membership.objects.filter(user__email="driver@demo.example").update(role=Role.DISPATCHER)
    assert simulated_routes(demo, tmp_path) == every_route


def test_a_history_replay_plays_out_a_person_route_nobody_worked_pin_included(demo):
    with organization_scope(demo):
        route = Route.objects.get(date=DAY, code="LSR-APP")
    replay_day(demo, DAY, World(WorldConfig(seed=5, not_home_probability=0.0)))
    with organization_scope(demo):
        route.refresh_from_db()
        assert route.status == RouteStatus.COMPLETED
        proof = ProofOfDelivery.objects.get(stop__route=route, shipment__delivery_pin_hash__gt="")
        assert proof.pin_verified is True


def test_demo_driver_route_prints_the_app_the_login_and_every_barcode(demo, tmp_path):
    out = StringIO()
    sheet = tmp_path / "labels.html"
    call_command(
        "demo_driver_route",
        "--org",
        "demo",
        "--date",
        DAY.isoformat(),
        "--base-url",
        "http://127.0.0.1:8000/",
        "--sheet",
        str(sheet),
        stdout=out,
    )
    text = out.getvalue()
    assert "http://127.0.0.1:8000/driver/" in text
    assert "driver@demo.example / demo1234" in text
    assert "LSR-APP" in text
    with organization_scope(demo):
        barcodes = list(
            Route.objects.get(date=DAY, code="LSR-APP")
            .stops.values_list("shipments__barcode", flat=True)
            .order_by("sequence")
        )
    lines = [line for line in text.splitlines() if line.strip().startswith("stop ")]
    assert [line.split()[2] for line in lines] == barcodes
    assert sum(f"PIN {PERSON_PIN}" in line for line in lines) == 1
    page = sheet.read_text()
    assert page.count("<svg") == len(barcodes) and page.startswith("<!doctype html>")
    assert all(barcode in page for barcode in barcodes)
