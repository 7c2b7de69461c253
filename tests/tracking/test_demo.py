"""`manage.py load_demo`: a usable tenant, idempotent, and nothing shared with the rival."""

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from carriers.models import Carrier, Device, Driver
from control_tower.models import ApiKey, Membership, Organization
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tracking.models import Route, RouteStatus, Shipment, ShipmentStatus, Stop, StopStatus

DAY = date(2026, 3, 2)


def run(*args) -> str:
    out = StringIO()
    call_command("load_demo", "--date", DAY.isoformat(), "--shipments", "40", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_demo_tenant_is_complete_and_reloading_changes_nothing():
    first = run()
    demo = Organization.objects.get(slug="demo")
    assert demo.time_zone == "America/Santiago"
    with organization_scope(demo):
        roles = set(Membership.objects.values_list("role", flat=True))
        assert roles == set(Role.values)
        assert Carrier.objects.count() == 4
        assert len(set(Carrier.objects.values_list("kind", flat=True))) == 4
        assert Device.objects.count() == Driver.objects.count() == 12
        assert Driver.objects.get(user__email="driver@demo.example").external_id == "DRV-001"
        assert Shipment.objects.count() == 40
        routes = Route.objects.filter(date=DAY)
        assert 2 <= routes.count() <= 10
        # Every shipment is on exactly one stop of that day.
        assert Stop.objects.filter(route__date=DAY).values("shipments").distinct().count() == 40
        assert routes.filter(status=RouteStatus.IN_PROGRESS).count() == min(3, routes.count())
        assert Stop.objects.filter(status=StopStatus.COMPLETED).exists()
        assert Stop.objects.filter(status=StopStatus.FAILED, failure_reason="not_home").exists()
        assert Shipment.objects.filter(status=ShipmentStatus.DELIVERED).exists()
        assert not Shipment.objects.filter(status=ShipmentStatus.INFO_RECEIVED).exists()
        for route in routes:
            assert route.planned_geometry.num_points >= route.stops.count() + 2
            coords = set(route.planned_geometry.coords)
            assert all((s.location.x, s.location.y) in coords for s in route.stops.all())
            assert route.planned_distance_m > 0
        counts = (Shipment.objects.count(), Route.objects.count(), Stop.objects.count())

    second = run()
    with organization_scope(demo):
        assert (Shipment.objects.count(), Route.objects.count(), Stop.objects.count()) == counts
        assert Device.objects.count() == 12
        assert ApiKey.objects.count() == 2  # a fresh key each run
    assert "planned now" in first and "already planned" in second
    assert "Device tokens" in first and "Device tokens" not in second

    rival = Organization.objects.get(slug="demo-rival")
    with organization_scope(rival):
        assert list(Shipment.objects.values_list("reference", flat=True)) == ["RIVAL-0001"]


@pytest.mark.django_db(transaction=True)
def test_printed_key_and_logins_work():
    key = run("--quiet").strip()
    client = APIClient()
    response = client.get("/api/v1/shipments/", HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert response.status_code == 200
    assert response.json()["count"] == 40
    assert client.login(username="dispatcher@demo.example", password="demo1234")
    # The rival's owner sees their one shipment and none of the demo's.
    rival = APIClient()
    assert rival.login(username="owner@rival.example", password="demo1234")
    refs = [s["reference"] for s in rival.get("/api/v1/shipments/").json()["results"]]
    assert refs == ["RIVAL-0001"]


@pytest.mark.django_db
def test_bad_arguments_are_explained():
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("load_demo", "--date", "25/11/2026", stdout=StringIO())
    with pytest.raises(CommandError, match="between 1 and 5000"):
        call_command("load_demo", "--shipments", "0", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_today_is_under_way_and_nothing_is_dated_in_the_future():
    from django.utils import timezone

    from tracking.models import ShipmentEvent

    call_command("load_demo", "--shipments", "40", stdout=StringIO())
    demo = Organization.objects.get(slug="demo")
    with organization_scope(demo):
        assert Route.objects.filter(status=RouteStatus.IN_PROGRESS).exists()
        assert Stop.objects.filter(status=StopStatus.COMPLETED).exists()
        latest = ShipmentEvent.objects.order_by("-occurred_at").first().occurred_at
        assert latest <= timezone.now()
