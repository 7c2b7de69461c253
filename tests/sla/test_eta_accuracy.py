"""ETA accuracy (carriers/sla/eta_accuracy.py, /api/v1/reports/eta-accuracy/, /reports/eta/): the
ETA on show at each checkpoint before an arrival, against the arrival, computed by hand here on
stops and revisions built with the factories. Who may read it, what a carrier user sees, what
another organization sees, time zones, the download, the page."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

import pytest
from django.test import Client

from carriers.sla.eta_accuracy import eta_accuracy
from carriers.sla.query import local_today
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import organization_scope
from tests.factories import CarrierFactory, DriverFactory, HubFactory, RouteFactory, StopFactory
from tracking.eta.checkpoints import checkpoints
from tracking.models import EtaRevision

pytestmark = pytest.mark.django_db

V1 = "/api/v1/reports/eta-accuracy/"
M = dt.timedelta(minutes=1)


def reached_stop(route, arrival, revisions, sequence=1):
    """A completed stop reached at `arrival`, with the revisions (minutes before the arrival
    they were computed, ETA offset from the arrival in minutes, half window in minutes)."""
    stop = StopFactory(
        organization=route.organization,
        route=route,
        sequence=sequence,
        status="completed",
        actual_arrival=arrival,
        actual_departure=arrival + 2 * M,
    )
    EtaRevision.objects.bulk_create(
        EtaRevision(
            organization=route.organization,
            stop=stop,
            computed_at=arrival - before * M,
            eta=arrival + offset * M,
            earliest=arrival + (offset - half) * M,
            latest=arrival + (offset + half) * M,
            method="test",
        )
        for before, offset, half in revisions
    )
    return stop


@dataclass
class World:
    day: dt.date
    own_route: object
    rival: object
    rival_route: object
    driver: object


def build(tenant) -> World:
    """Yesterday (the organization's zone), two carriers.

    Own carrier, one stop reached at 10:00 with revisions computed 200, 100 and 30 minutes
    before it, and one computed after it (never shown before the arrival):
    - at 180 min before (bucket 120+) the 200-min one was on show: ETA 10 min late of the
      arrival (the parcel came 10 min early: error −10), window ±15: covered;
    - at 90 and 45 min (60-120, 30-60): the 100-min one, ETA 5 min early (error +5), window
      ±3: the arrival is after it;
    - at 22.5 and 7.5 min (15-30, 0-15): the 30-min one, exact, window ±4: covered.
    Rival carrier, one stop reached at 15:00 with one revision 60 min before: ETA 20 min early
    (error +20), window ±10 for every checkpoint up to 45 min (the 90 and 180 ones have none)."""
    organization = tenant.organization
    organization.time_zone = "America/Santiago"
    organization.save(update_fields=["time_zone"])
    zone = organization.zone
    with organization_scope(organization):
        actor = actor_for_membership(tenant.members[Role.OPS_MANAGER])
        day = local_today(actor) - dt.timedelta(days=1)
        hub = HubFactory(organization=organization, name="La Serena hub", region="Norte")
        driver = DriverFactory(organization=organization, carrier=tenant.carrier, name="Ana")
        tenant.carrier.name = "Own Fleet"
        tenant.carrier.save(update_fields=["name"])
        own_route = RouteFactory(
            organization=organization, carrier=tenant.carrier, hub=hub, date=day, driver=driver
        )
        ten = dt.datetime.combine(day, dt.time(10, 0), tzinfo=zone)
        reached_stop(own_route, ten, [(200, 10, 15), (100, -5, 3), (30, 0, 4), (-5, 1, 1)])
        rival = CarrierFactory(organization=organization, code="rival", name="Rival 3PL")
        rival_route = RouteFactory(organization=organization, carrier=rival, hub=hub, date=day)
        three = dt.datetime.combine(day, dt.time(15, 0), tzinfo=zone)
        reached_stop(rival_route, three, [(60, -20, 10)])
    return World(day, own_route, rival, rival_route, driver)


def _params(world: World, **extra) -> dict:
    return {"from": world.day.isoformat(), "to": world.day.isoformat(), **extra}


def test_the_checkpoints_are_the_middles_of_the_engine_buckets():
    assert checkpoints() == [
        ("0-15", 7.5),
        ("15-30", 22.5),
        ("30-60", 45.0),
        ("60-120", 90.0),
        ("120+", 180.0),
    ]


def test_figures_by_horizon_are_the_eta_on_show_at_each_checkpoint(tenant):
    world = build(tenant)
    client = _ops_client(tenant)
    body = client.get(V1, _params(world)).json()
    by = {row["horizon"]: row for row in body["horizons"]}
    # 120+: own only (−10, covered)
    assert by["120+"] | {} == {
        "horizon": "120+",
        "n": 1,
        "mae_min": 10.0,
        "p90_abs_min": 10.0,
        "bias_min": -10.0,
        "coverage": 1.0,
        "early_share": 0.0,
        "late_share": 0.0,
        "median_width_min": 30.0,
    }
    # 60-120: own only (+5, after the window)
    assert (by["60-120"]["n"], by["60-120"]["bias_min"], by["60-120"]["coverage"]) == (1, 5.0, 0.0)
    assert by["60-120"]["late_share"] == 1.0
    # 30-60: own +5 (late), rival +20 (late): MAE 12.5, P90 of |5|, |20| = 18.5
    assert by["30-60"]["n"] == 2
    assert by["30-60"]["mae_min"] == 12.5
    assert by["30-60"]["p90_abs_min"] == 18.5
    assert by["30-60"]["coverage"] == 0.0
    # 0-15 and 15-30: own exact (covered), rival +20 (late)
    for bucket in ("0-15", "15-30"):
        assert (by[bucket]["n"], by[bucket]["mae_min"], by[bucket]["coverage"]) == (2, 10.0, 0.5)
        assert by[bucket]["bias_min"] == 10.0
        assert by[bucket]["median_width_min"] == 14.0  # 8 and 20
    assert body["overall"]["n"] == 8
    assert body["target_coverage"] == [0.75, 0.85]
    assert [day["day"] for day in body["coverage_by_day"]] == [world.day.isoformat()]
    assert body["coverage_by_day"][0]["samples"] == 8


def test_grouping_by_carrier_driver_hour_hub_and_day(tenant):
    world = build(tenant)
    client = _ops_client(tenant)
    carriers = client.get(V1, _params(world, group="carrier")).json()["rows"]
    assert {row["label"]: row["overall"]["n"] for row in carriers} == {
        "Own Fleet": 5,
        "Rival 3PL": 3,
    }
    own = next(row for row in carriers if row["label"] == "Own Fleet")
    assert {h["horizon"] for h in own["horizons"]} == {"0-15", "15-30", "30-60", "60-120", "120+"}
    drivers = client.get(V1, _params(world, group="driver")).json()["rows"]
    assert {row["label"]: row["overall"]["n"] for row in drivers} == {"Ana": 5, "No driver": 3}
    hours = client.get(V1, _params(world, group="hour")).json()["rows"]
    assert [(row["key"], row["label"]) for row in hours] == [
        ("10", "10:00–10:59"),
        ("15", "15:00–15:59"),
    ]
    hubs = client.get(V1, _params(world, group="hub")).json()["rows"]
    assert [row["label"] for row in hubs] == ["La Serena hub"]
    days = client.get(V1, _params(world, group="day")).json()["rows"]
    assert [row["key"] for row in days] == [world.day.isoformat()]


def test_narrowing_and_the_period_follow_the_organizations_time_zone(tenant):
    world = build(tenant)
    organization = tenant.organization
    zone = organization.zone
    with organization_scope(organization):
        # Santiago is 3 hours behind UTC in December: 22:30 local on the day is the next day
        # in UTC (counted: local days count), 22:30 local the day before is the day in UTC
        # (not counted).
        inside = dt.datetime.combine(world.day, dt.time(22, 30), tzinfo=zone)
        reached_stop(world.own_route, inside, [(30, 0, 4)], sequence=2)
        outside = dt.datetime.combine(
            world.day - dt.timedelta(days=1), dt.time(22, 30), tzinfo=zone
        )
        reached_stop(world.own_route, outside, [(30, 0, 4)], sequence=3)
        assert inside.astimezone(dt.UTC).date() != world.day
        assert outside.astimezone(dt.UTC).date() == world.day
    client = _ops_client(tenant)
    body = client.get(V1, _params(world, carrier=tenant.carrier.pk)).json()
    assert body["overall"]["n"] == 5 + 2  # the 22:30 stop counts for 0-15 and 15-30
    body = client.get(V1, _params(world, driver=world.driver.pk)).json()
    assert body["overall"]["n"] == 5 + 2  # the new stop is on the same route: same driver
    body = client.get(V1, {"from": world.day.isoformat(), "to": world.day.isoformat(),
                           "carrier": world.rival.pk}).json()  # fmt: skip
    assert body["overall"]["n"] == 3


def test_a_carrier_user_and_key_see_only_their_carrier(tenant, api_client_for, api_key_for):
    world = build(tenant)
    for client in (
        api_client_for(tenant.user(Role.CARRIER_USER)),
        api_client_for(key=api_key_for(tenant, carrier=tenant.carrier)),
    ):
        body = client.get(V1, _params(world, group="carrier")).json()
        assert [row["label"] for row in body["rows"]] == ["Own Fleet"]
        assert body["overall"]["n"] == 5
        refused = client.get(V1, _params(world, carrier=world.rival.pk))
        assert refused.status_code == 400
        assert "carrier" in refused.json()["fields"]


def test_another_organization_sees_none_of_our_rows(tenant, other_tenant, api_client_for):
    world = build(tenant)
    client = api_client_for(other_tenant.user(Role.OWNER))
    body = client.get(V1, _params(world, group="carrier")).json()
    assert body["overall"]["n"] == 0
    assert body["rows"] == []
    assert all(row["n"] == 0 for row in body["horizons"])
    # Naming our organization in the header is refused: they are no member of it.
    ours = client.get(V1, _params(world), HTTP_X_ORGANIZATION=tenant.organization.slug)
    assert ours.status_code in (403, 404), ours.content


def test_who_may_read_it(tenant, api_client_for, api_key_for):
    build(tenant)
    for role in (Role.OPS_MANAGER, Role.DISPATCHER, Role.CARRIER_USER, Role.OWNER):
        assert api_client_for(tenant.user(role)).get(V1).status_code == 200, role
    assert api_client_for(tenant.user(Role.DRIVER)).get(V1).status_code == 403
    reader = api_client_for(key=api_key_for(tenant, scopes=[Scope.REPORTS_READ]))
    assert reader.get(V1).status_code == 200
    other = api_client_for(key=api_key_for(tenant, scopes=[Scope.SHIPMENTS_READ]))
    assert other.get(V1).status_code == 403


def test_bad_groups_are_named_and_the_csv_download_holds_the_figures(tenant):
    world = build(tenant)
    client = _ops_client(tenant)
    refused = client.get(V1, {"group": "region"})
    assert refused.status_code == 400
    assert "hour, hub, carrier, driver, day" in refused.json()["fields"]["group"][0]
    download = client.get(V1, _params(world, group="carrier", format="csv"))
    assert download.status_code == 200
    assert download["Content-Disposition"].endswith(
        f'eta_accuracy_by_carrier_{world.day}_{world.day}.csv"'
    )
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Carrier", "Horizon (min before arrival)", "Samples"]
    assert rows[1][:3] == ["All", "all", "8"]
    assert ["Rival 3PL", "all", "3"] in [row[:3] for row in rows]


def test_the_selector_counts_nothing_for_an_empty_period(tenant):
    organization = tenant.organization
    with organization_scope(organization):
        actor = actor_for_membership(tenant.members[Role.OPS_MANAGER])
        from carriers.sla.types import ReportFilters

        day = local_today(actor)
        report = eta_accuracy(actor=actor, filters=ReportFilters(day, day), group="driver")
    assert report.empty
    assert report.rows == []
    assert all(
        accuracy.n == 0 and accuracy.mae_min is None for accuracy in report.horizons.values()
    )


def test_the_page_shows_both_tables_the_chart_and_keeps_other_tabs_working(tenant):
    world = build(tenant)
    client = Client()
    client.force_login(tenant.user(Role.OPS_MANAGER))
    page = client.get("/reports/eta/", _params(world, group="carrier"))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="by-horizon"' in html and 'id="by-group"' in html
    assert "Rival 3PL" in html and "Own Fleet" in html
    assert 'id="coverage-chart"' in html
    assert "/api/v1/reports/eta-accuracy/?" in html  # the downloads
    # The scorecard tab does not carry this page's group along (hour is no scorecard group).
    hourly = client.get("/reports/eta/", _params(world, group="hour")).content.decode()
    tabs = hourly.split('aria-label="Reports"')[1].split("</nav>")[0]
    scorecard_tab = tabs.split('<a href="/reports/?')[1].split('"')[0]
    assert "group=" not in scorecard_tab and f"from={world.day}" in scorecard_tab
    assert client.get("/reports/?" + scorecard_tab.replace("&amp;", "&")).status_code == 200
    empty = client.get("/reports/eta/", {"from": "2020-01-01", "to": "2020-01-02"})
    assert "No ETAs to judge in this period" in empty.content.decode()
    assert client.get("/reports/eta/", {"group": "planet"}).status_code == 400
    driver = Client()
    driver.force_login(tenant.user(Role.DRIVER))
    assert driver.get("/reports/eta/").status_code == 403


def _ops_client(tenant):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(tenant.user(Role.OPS_MANAGER))
    return client
