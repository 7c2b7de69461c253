"""The /reports/ pages through Django's test client, on real roll-ups: a few days of routes
built with the factories, rolled up by the SLA code (carriers.sla.rollup), read by the SLA
selectors. Who gets in, what a carrier user sees, bad parameters, other organizations' ids."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from django.contrib.gis.geos import Point
from django.test import Client

from carriers.sla.query import local_today
from carriers.sla.rollup import recompute_day
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import (
    CarrierFactory,
    HubFactory,
    RouteFactory,
    ShipmentFactory,
    StopFactory,
    UserFactory,
)
from tracking.models import StopShipment

pytestmark = pytest.mark.django_db


@dataclass
class History:
    own: object  # the tenant's carrier (the carrier user's), always on time
    andes: object  # a 3PL: late twice a day, one failed attempt a day, target 95 % on time
    hub: object
    days: list[dt.date]
    late_stop_ids: list[int]


def build_history(tenant, *, days: int = 3) -> History:
    """`days` complete service days up to yesterday (the organization's time zone): per day a
    completed route of 3 on-time deliveries for the tenant's own carrier, and one for "Andes
    3PL" with 1 on-time delivery, 2 deliveries 45 minutes late and 1 failed attempt (nobody
    home). Then the SLA roll-ups of those days are recomputed, as `manage.py sla_rollup` does."""
    organization = tenant.organization
    zone = organization.zone
    with organization_scope(organization):
        actor = actor_for_membership(tenant.members[Role.OPS_MANAGER])
        yesterday = local_today(actor) - dt.timedelta(days=1)
        service_days = [yesterday - dt.timedelta(days=n) for n in range(days - 1, -1, -1)]
        own = tenant.carrier
        own.name = "Own Fleet"
        own.save(update_fields=["name"])
        andes = CarrierFactory(
            organization=organization, code="andes", name="Andes 3PL", sla_on_time_target_pct=95
        )
        hub = HubFactory(organization=organization, name="La Serena hub", region="Norte")
        late_stop_ids: list[int] = []
        for day in service_days:
            for carrier, plan in ((own, ["on_time"] * 3), (andes, ["on_time", "late", "late",
                                                                    "failed"])):  # fmt: skip
                start = dt.datetime.combine(day, dt.time(9, 0), tzinfo=zone)
                route = RouteFactory(
                    organization=organization,
                    carrier=carrier,
                    hub=hub,
                    date=day,
                    status="completed",
                    planned_start=start,
                    planned_end=start + dt.timedelta(hours=8),
                    started_at=start,
                    completed_at=start + dt.timedelta(hours=7),
                    code=f"{carrier.code}-{day:%m%d}",
                )
                for index, outcome in enumerate(plan):
                    window_start = start + dt.timedelta(hours=1 + index)
                    window_end = window_start + dt.timedelta(hours=1)
                    if outcome == "late":
                        at = window_end + dt.timedelta(minutes=45)
                    else:
                        at = window_start + dt.timedelta(minutes=20)
                    stop = StopFactory(
                        organization=organization,
                        route=route,
                        sequence=index + 1,
                        location=Point(-71.25 + index / 100, -29.9, srid=4326),
                        window_start=window_start,
                        window_end=window_end,
                        planned_arrival=window_start + dt.timedelta(minutes=15),
                        status="failed" if outcome == "failed" else "completed",
                        failure_reason="not_home" if outcome == "failed" else "",
                        actual_arrival=at - dt.timedelta(minutes=3),
                        actual_departure=at,
                    )
                    if outcome == "late":
                        late_stop_ids.append(stop.pk)
                    shipment = ShipmentFactory(
                        organization=organization,
                        carrier=carrier,
                        hub=hub,
                        service_type="next_day",
                        status="attempt_failed" if outcome == "failed" else "delivered",
                        promised_window_start=window_start,
                        promised_window_end=window_end,
                    )
                    StopShipment(organization=organization, stop=stop, shipment=shipment).save()
        for day in service_days:
            recompute_day(organization=organization, day=day)
    return History(own, andes, hub, service_days, late_stop_ids)


def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text_of(response) -> str:
    """The visible text of a page, roughly: tags dropped, whitespace collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_anonymous_people_are_sent_to_the_login_page():
    response = Client().get("/reports/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/reports/"


@pytest.mark.parametrize("path", ["/reports/", "/reports/drilldown/?metric=on_time_pct",
                                  "/reports/compare/"])  # fmt: skip
def test_drivers_and_people_without_an_organization_get_403(tenant, path):
    assert page_for(tenant.user(Role.DRIVER)).get(path).status_code == 403
    assert page_for(UserFactory()).get(path).status_code == 403


@pytest.mark.parametrize(
    "role", [Role.OWNER, Role.ADMIN, Role.OPS_MANAGER, Role.DISPATCHER, Role.CARRIER_USER]
)
def test_people_who_read_reports_get_the_scorecard_and_a_nav_link(tenant, role):
    build_history(tenant, days=2)
    client = page_for(tenant.user(role))
    response = client.get("/reports/")
    assert response.status_code == 200
    assert '<a href="/reports/">Reports</a>' in response.content.decode()
    assert "Own Fleet" in text_of(response)
    for path in ("/reports/drilldown/?metric=on_time_pct&outcome=late", "/reports/compare/"):
        assert client.get(path).status_code == 200


def test_the_reports_link_is_not_shown_to_drivers(tenant):
    body = page_for(tenant.user(Role.DRIVER)).get("/").content.decode()
    assert 'href="/reports/"' not in body


def test_the_ops_manager_sees_every_carrier_with_breaches_trends_and_charts(tenant):
    history = build_history(tenant, days=3)
    response = page_for(tenant.user(Role.OPS_MANAGER)).get("/reports/")
    body = response.content.decode()
    text = text_of(response)
    assert "Andes 3PL" in text and "Own Fleet" in text
    # Andes: 1 of 3 deliveries on time each day, against a 95 % target: a breach, in words.
    andes_row = re.search(rf'<tr data-key="{history.andes.pk}">(.*?)</tr>', body, re.S).group(1)
    assert "33.3%" in andes_row and "Breach" in andes_row and "≥ 95.0%" in andes_row
    # Every number links to its drill-down, narrowed to the row.
    assert "/reports/drilldown/?from=" in andes_row and f"carrier={history.andes.pk}" in andes_row
    # The period is said in words, in the organization's time zone.
    first, last = history.days[0] - dt.timedelta(days=4), history.days[-1]
    assert f"{last.day} {last:%b %Y}" in text and "America/Santiago" in text
    # Four charts, each an accessible SVG followed by its data table.
    assert body.count('role="img"') == 4 and body.count("<details>") == 4
    assert "On-time rate per carrier, by day" in text and "Lateness distribution" in text
    # Exports: the reports API with the page's own parameters.
    assert re.search(r'href="/api/v1/reports/scorecard/\?from=[^"]*format=xlsx"', body)
    assert first < last


def test_a_carrier_user_sees_only_its_own_carrier(tenant):
    history = build_history(tenant, days=2)
    client = page_for(tenant.user(Role.CARRIER_USER))
    for path in (
        "/reports/",
        "/reports/?group=day",
        "/reports/compare/",
        "/reports/drilldown/?metric=on_time_pct&outcome=late",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Andes" not in response.content.decode(), path
    # Asking for the other carrier by id is refused like an unknown id.
    response = client.get(f"/reports/?carrier={history.andes.pk}")
    assert response.status_code == 400
    assert f"Unknown carrier id(s): {history.andes.pk}" in text_of(response)


def test_the_drill_down_from_the_late_rate_lists_the_late_stops(tenant):
    history = build_history(tenant, days=2)
    client = page_for(tenant.user(Role.OPS_MANAGER))
    response = client.get(
        f"/reports/drilldown/?metric=on_time_pct&outcome=late&carrier={history.andes.pk}"
    )
    assert response.status_code == 200
    body = response.content.decode()
    consoles = {int(n) for n in re.findall(r'href="/console/\?stop=(\d+)"', body)}
    assert consoles == set(history.late_stop_ids)
    assert "4 rows" in text_of(response)
    # A breadcrumb back to the scorecard with the same filters, and the downloads.
    back = re.search(r'<a href="([^"]*)" id="back-to-scorecard"', body).group(1)
    assert back.startswith("/reports/?") and f"carrier={history.andes.pk}" in back
    assert "metric=" not in back
    assert 'href="/api/v1/reports/drilldown/?' in body


def test_an_empty_period_says_how_to_compute_the_roll_ups(tenant):
    response = page_for(tenant.user(Role.OPS_MANAGER)).get(
        "/reports/?from=2025-01-01&to=2025-01-07"
    )
    assert response.status_code == 200
    text = text_of(response)
    assert "No roll-ups for this period" in text
    assert "manage.py sla_rollup --org acme --from 2025-01-01 --to 2025-01-07" in text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "Bad report parameter `from`: Use an ISO date like 2026-03-02"),
        ("from=2026-11-10&to=2026-11-01", "`from` must be on or before `to`"),
        ("group=planet", "Bad report parameter `group`: Choose one of: carrier"),
        ("carrier=abc", "Give numeric ids"),
    ],
)
def test_bad_parameters_get_a_400_page_with_the_message_of_the_api(tenant, query, message):
    response = page_for(tenant.user(Role.OPS_MANAGER)).get(f"/reports/?{query}")
    assert response.status_code == 400
    assert message in text_of(response).replace("&#x27;", "'")


def test_a_drill_down_needs_a_metric_and_a_page_number(tenant):
    client = page_for(tenant.user(Role.OPS_MANAGER))
    assert "choose a metric" in text_of(client.get("/reports/drilldown/"))
    assert client.get("/reports/drilldown/").status_code == 400
    response = client.get("/reports/drilldown/?metric=on_time_pct&page=0")
    assert response.status_code == 400 and "a page number from 1" in text_of(response)
    response = client.get("/reports/drilldown/?metric=on_time_pct&outcome=bogus")
    assert response.status_code == 400 and "Unknown outcome for on_time_pct" in text_of(response)


def test_another_organizations_ids_are_refused(tenant, other_tenant):
    with organization_scope(other_tenant.organization):
        foreign_hub = HubFactory(organization=other_tenant.organization, name="Globex hub")
    client = page_for(tenant.user(Role.OPS_MANAGER))
    for path, field in (
        (f"/reports/?carrier={other_tenant.carrier.pk}", "carrier"),
        (f"/reports/?hub={foreign_hub.pk}", "hub"),
        (f"/reports/compare/?hub={foreign_hub.pk}", "hub"),
        (f"/reports/drilldown/?metric=on_time_pct&carrier={other_tenant.carrier.pk}", "carrier"),
    ):
        response = client.get(path)
        assert response.status_code == 400, path
        assert f"Unknown {field} id(s)" in text_of(response)
        assert "Globex" not in response.content.decode()


def test_compare_two_arbitrary_periods(tenant):
    history = build_history(tenant, days=3)
    first, last = history.days[0], history.days[-1]
    client = page_for(tenant.user(Role.OPS_MANAGER))
    response = client.get(f"/reports/compare/?from={last}&to={last}&from_b={first}&to_b={first}")
    assert response.status_code == 200
    text = text_of(response)
    assert "Andes 3PL" in text and "Own Fleet" in text
    assert f"A: {last:%a} {last.day}" in text and f"B: {first:%a} {first.day}" in text
    bad = client.get("/reports/compare/?from_b=yesterday")
    assert bad.status_code == 400 and "`from_b`" in text_of(bad)


@pytest.mark.parametrize("group", ["hub", "region", "day", "service_type", "driver"])
def test_every_grouping_renders_with_drill_downs_narrowed_to_its_rows(tenant, group):
    history = build_history(tenant, days=2)
    response = page_for(tenant.user(Role.OPS_MANAGER)).get(f"/reports/?group={group}")
    assert response.status_code == 200
    body = response.content.decode()
    expected = {
        "hub": f"hub={history.hub.pk}",
        "region": "region=Norte",
        "day": f"from={history.days[-1]}&amp;to={history.days[-1]}",
        "service_type": "service_type=next_day",
        "driver": "metric=",
    }[group]
    assert re.search(r'<tbody>.*href="/reports/drilldown/\?[^"]*' + re.escape(expected), body, re.S)


def test_every_outcome_the_drill_down_offers_is_one_the_selectors_answer(tenant):
    from carriers.sla.drill import OUTCOME_CHOICES

    build_history(tenant, days=1)
    client = page_for(tenant.user(Role.OPS_MANAGER))
    for metric, choices in OUTCOME_CHOICES.items():
        for outcome, label in choices:
            response = client.get(f"/reports/drilldown/?metric={metric}&outcome={outcome}")
            assert response.status_code == 200, (metric, outcome)
            assert label in text_of(response)
    # The late list offers the early one next to it (both miss the window).
    body = client.get("/reports/drilldown/?metric=on_time_pct&outcome=late").content.decode()
    assert re.search(r'<a href="/reports/drilldown/\?[^"]*outcome=early[^"]*">Early</a>', body)


def test_the_pages_read_roll_ups_in_a_bounded_number_of_queries(
    tenant, django_assert_max_num_queries
):
    build_history(tenant, days=3)
    client = page_for(tenant.user(Role.OPS_MANAGER))
    # Session, actor, filter choices, the scorecard and its previous period, four charts: a
    # fixed number, whatever the number of carriers, days or stops.
    with django_assert_max_num_queries(30):
        assert client.get("/reports/").status_code == 200
    with django_assert_max_num_queries(15):
        assert client.get("/reports/drilldown/?metric=on_time_pct").status_code == 200
    with django_assert_max_num_queries(25):
        assert client.get("/reports/compare/").status_code == 200
