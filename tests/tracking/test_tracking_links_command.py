"""`manage.py tracking_links`: what `make demo` prints, fresh links that open the right
shipments (delivered with a proof, the driver's next stop, later in the day)."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from control_tower.tenancy.actors import Actor
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import RouteFactory, stop_with_shipments
from tracking.models import LinkSource, ProofOfDelivery, TrackingLink
from tracking.services import route_start
from tracking.services.tracking_links import link_resolve
from tracking.simulation.demo_day import deliver_with_proof

pytestmark = pytest.mark.django_db
URL = re.compile(r"(\S+)\s+(https?://\S+/t/([A-Za-z0-9_-]{32}))$")


@pytest.fixture
def day(tenant, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    org = tenant.organization
    today = timezone.localdate(timezone.now(), org.zone)
    start = timezone.now() - dt.timedelta(hours=1)
    owner = Actor(organization=org, user=tenant.user(Role.OWNER), role=Role.OWNER)
    with organization_scope(org):
        route = RouteFactory(organization=org, carrier=tenant.carrier, date=today, code="R-1")
        stops = [
            stop_with_shipments(
                route=route,
                sequence=n,
                planned_arrival=start + dt.timedelta(minutes=20 * n),
            )
            for n in range(1, 8)
        ]
        route_start(route=route, actor=owner)
        deliver_with_proof(owner, stops[0], timezone.now() - dt.timedelta(minutes=5))
    return {"org": org, "today": today, "stops": stops}


def _run(*args) -> list[tuple[str, str, str]]:
    out = StringIO()
    call_command("tracking_links", *args, stdout=out)
    return [m.groups() for line in out.getvalue().splitlines() if (m := URL.search(line))]


def test_prints_a_delivered_a_next_and_a_later_shipment(day):
    stops = day["stops"]
    rows = _run("--org", day["org"].slug, "--sample", "3", "--date", str(day["today"]))
    assert len(rows) == 3
    shipments = [link_resolve(token).shipment for _ref, _url, token in rows]
    with organization_scope(day["org"]):
        expected = [stop.shipments.get() for stop in (stops[0], stops[1], stops[6])]
        assert ProofOfDelivery.objects.filter(shipment=expected[0]).exists()
    assert [s.pk for s in shipments] == [s.pk for s in expected]
    assert [s.status for s in shipments] == ["delivered", "out_for_delivery", "out_for_delivery"]
    assert [ref for ref, _url, _token in rows] == [s.reference for s in expected]
    assert all(url.startswith("http://127.0.0.1:8000/t/") for _ref, url, _token in rows)
    assert set(TrackingLink.dangerously_unscoped.values_list("source", flat=True)) == {
        LinkSource.DEMO
    }
    # Each run issues new links.
    again = _run("--org", day["org"].slug, "--sample", "2", "--date", str(day["today"]))
    assert len(again) == 2 and {t for *_x, t in again}.isdisjoint({t for *_x, t in rows})


def test_one_shipment_by_reference_and_the_organizations_host(day):
    org = day["org"]
    org.tracking_host = "track.acme.example"
    org.save()
    with organization_scope(org):
        reference = day["stops"][3].shipments.get().reference
    [(ref, url, token)] = _run("--org", org.slug, "--reference", reference)
    assert ref == reference and url.startswith("https://track.acme.example/t/")
    assert link_resolve(token).shipment.reference == reference
    with pytest.raises(CommandError):
        _run("--org", org.slug, "--reference", "NOPE")


def test_a_day_without_shipments_says_so(day):
    out = StringIO()
    call_command("tracking_links", "--org", day["org"].slug, "--date", "2001-01-01", stdout=out)
    assert "No shipments" in out.getvalue()
    assert not TrackingLink.dangerously_unscoped.exists()
