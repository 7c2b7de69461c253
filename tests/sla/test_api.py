"""The reports API on a small hand-built day with known answers: carrier A delivers three
parcels (two on time, one 20 minutes late), carrier B one on time and one failed attempt (not
home). Shapes, filters, downloads parsed back, and who sees which rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import openpyxl
import pytest

from carriers.sla.rollup import recompute_day
from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import organization_scope
from tests.factories import (
    CarrierFactory,
    HubFactory,
    MembershipFactory,
    RouteFactory,
    ShipmentFactory,
    StopFactory,
)
from tracking.models import StopShipment

pytestmark = pytest.mark.django_db

V1 = "/api/v1/reports"
DAY = date(2026, 11, 30)
PERIOD = {"from": DAY.isoformat(), "to": DAY.isoformat()}


def _utc(hour, minute=0):
    # 30 November 2026 in Santiago is UTC-3 (summer time).
    return datetime(2026, 11, 30, hour + 3, minute, tzinfo=UTC)


class Day:
    def __init__(self, tenant):
        org = self.org = tenant.organization
        self.a = tenant.carrier
        self.b = CarrierFactory(organization=org, code="rival", name="Rival couriers")
        self.hub = HubFactory(organization=org, region="Norte")
        self.references = {}
        plan = {
            self.a: [("on_time", 11, 0), ("on_time", 11, 30), ("late", 12, 20)],
            self.b: [("on_time", 10, 30), ("failed", 11, 10)],
        }
        for carrier, stops in plan.items():
            route = RouteFactory(
                organization=org,
                carrier=carrier,
                hub=self.hub,
                date=DAY,
                status="completed",
                planned_start=_utc(9),
                started_at=_utc(9),
                completed_at=_utc(13),
            )
            for sequence, (outcome, hour, minute) in enumerate(stops, start=1):
                at = _utc(hour, minute)
                shipment = ShipmentFactory(
                    organization=org,
                    carrier=carrier,
                    hub=self.hub,
                    promised_window_start=_utc(10),
                    promised_window_end=_utc(12),
                )
                stop = StopFactory(
                    organization=org,
                    route=route,
                    sequence=sequence,
                    status="failed" if outcome == "failed" else "completed",
                    actual_arrival=at - timedelta(minutes=3),
                    actual_departure=at,
                    planned_arrival=at - timedelta(minutes=5),
                )
                if outcome == "failed":
                    type(stop).dangerously_unscoped.filter(pk=stop.pk).update(
                        failure_reason="not_home"
                    )
                StopShipment(organization=org, stop=stop, shipment=shipment).save()
                self.references[(carrier.pk, outcome, sequence)] = shipment.reference
        with organization_scope(org):
            recompute_day(organization=org, day=DAY)


@pytest.fixture
def day(tenant):
    return Day(tenant)


def _get(client, path, **params):
    response = client.get(f"{V1}/{path}/", {**PERIOD, **params})
    assert response.status_code == 200, response.content
    return response


def _csv(response) -> list[dict]:
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def _rows(answer) -> dict:
    return {row["label"]: row for row in answer["rows"]}


def test_scorecard_rows_are_judged_against_each_carriers_targets(day, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    answer = _get(client, "scorecard").json()
    assert answer["period"] == {"date_from": "2026-11-30", "date_to": "2026-11-30", "days": 1}
    assert answer["previous_period"]["date_to"] == "2026-11-29"
    assert answer["group"] == "carrier"
    assert [m["key"] for m in answer["metrics"]][:3] == ["on_time_pct", "early_pct", "late_pct"]
    on_time_def = answer["metrics"][0]
    assert on_time_def["label"] == "On time" and on_time_def["unit"] == "pct"
    rows = _rows(answer)
    assert set(rows) == {day.a.name, "Rival couriers"}
    a = rows[day.a.name]
    assert a["carrier_id"] == day.a.pk
    assert a["metrics"]["on_time_pct"] == {
        "value": 66.67,
        "target": 95.0,
        "status": "breach",
        "previous": None,
        "delta": None,
        "numerator": 1,  # what the drill-down lists: the late one
        "denominator": 3,
    }
    assert a["metrics"]["deliveries"]["value"] == 3
    b = rows["Rival couriers"]
    assert b["metrics"]["on_time_pct"]["status"] == "pass"
    assert b["metrics"]["first_attempt_pct"]["value"] == 50.0
    assert b["metrics"]["failed_attempts"]["value"] == 1
    assert answer["total"]["metrics"]["deliveries"]["value"] == 4
    assert "format=csv" in answer["exports"]["csv"]
    assert "format=xlsx" in answer["exports"]["xlsx"]


def test_filters_narrow_the_rows(day, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    only_b = _get(client, "scorecard", carrier=day.b.pk).json()
    assert list(_rows(only_b)) == ["Rival couriers"]
    assert only_b["total"]["metrics"]["deliveries"]["value"] == 1
    same_day = _get(client, "scorecard", service_type="same_day").json()
    assert same_day["rows"] == []
    by_region = _get(client, "scorecard", group="region").json()
    assert list(_rows(by_region)) == ["Norte"]
    assert by_region["rows"][0]["metrics"]["deliveries"]["value"] == 4
    by_day = _get(client, "scorecard", group="day", compare="false").json()
    assert [row["key"] for row in by_day["rows"]] == ["2026-11-30"]
    assert by_day["previous_period"] is None


def test_trend_has_a_point_per_day_per_carrier(day, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    answer = _get(client, "trend", metric="on_time_pct").json()
    assert answer["metric"]["key"] == "on_time_pct"
    series = {line["label"]: line["points"] for line in answer["series"]}
    assert series == {
        day.a.name: [{"date": "2026-11-30", "value": 66.67}],
        "Rival couriers": [{"date": "2026-11-30", "value": 100.0}],
    }
    first_attempt = _get(client, "trend", metric="first_attempt_pct").json()
    assert {line["label"]: line["points"][0]["value"] for line in first_attempt["series"]} == {
        day.a.name: 100.0,
        "Rival couriers": 50.0,
    }


def test_breakdowns_count_reasons_kinds_and_lateness(day, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    reasons = _get(client, "failure-reasons").json()
    assert reasons["categories"][0] == {"code": "not_home", "label": "Recipient not home"}
    assert [(r["label"], r["counts"]["not_home"], r["total"]) for r in reasons["rows"]] == [
        ("Rival couriers", 1, 1)
    ]
    lateness = _get(client, "lateness").json()
    assert [(r["label"], r["counts"]["15-30"], r["total"]) for r in lateness["rows"]] == [
        (day.a.name, 1, 1)
    ]
    exceptions = _get(client, "exceptions").json()
    assert exceptions["rows"] == [] and exceptions["categories"]


def test_drilldown_lists_the_late_delivery_with_links(day, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    answer = _get(client, "drilldown", metric="on_time_pct").json()
    assert answer["outcome"] == "late" and answer["count"] == 1
    assert answer["next"] is None and answer["previous"] is None
    [row] = answer["results"]
    assert row["reference"] == day.references[(day.a.pk, "late", 3)]
    assert row["lateness_min"] == 20.0
    assert row["links"]["console"].startswith("/console/?stop=")
    assert {"key": "reference", "label": "Shipment"} in answer["columns"]
    failed = _get(client, "drilldown", metric="failed_attempts", outcome="not_home").json()
    assert [r["reference"] for r in failed["results"]] == [day.references[(day.b.pk, "failed", 2)]]


def test_drilldown_pages(day, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    first = _get(client, "drilldown", metric="deliveries", page_size=3).json()
    assert first["count"] == 4 and len(first["results"]) == 3
    assert "page=2" in first["next"] and first["previous"] is None
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    assert second["previous"] is not None and "page=" not in second["previous"]
    seen = {r["reference"] for r in first["results"] + second["results"]}
    assert len(seen) == 4
    huge = _get(client, "drilldown", metric="deliveries", page_size=100000).json()
    assert len(huge["results"]) == 4


def test_planning_history_by_hour_address_and_area(day, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    by_hour = _get(client, "planning-history", by="hour").json()
    assert by_hour["by"] == "hour"
    assert [(row["hour"], row["count"]) for row in by_hour["results"]] == [
        (10, 2),
        (11, 2),
        (12, 1),
    ]
    assert all(row["dwell_mean_s"] == 180.0 for row in by_hour["results"])
    for by in ("area", "address"):
        answer = _get(client, "planning-history", by=by).json()
        assert sum(row["count"] for row in answer["results"]) == 5, by
    default = _get(client, "planning-history").json()
    assert default["by"] == "area"


def test_a_carrier_user_and_key_see_only_their_carrier(day, tenant, api_client_for, api_key_for):
    for client in (
        api_client_for(tenant.user(Role.CARRIER_USER)),
        api_client_for(key=api_key_for(tenant, carrier=tenant.carrier)),
    ):
        card = _get(client, "scorecard").json()
        assert list(_rows(card)) == [day.a.name]
        assert card["total"]["metrics"]["deliveries"]["value"] == 3
        assert [line["label"] for line in _get(client, "trend").json()["series"]] == [day.a.name]
        assert _get(client, "failure-reasons").json()["rows"] == []
        assert _get(client, "drilldown", metric="failed_attempts").json()["count"] == 0
        assert _get(client, "drilldown", metric="deliveries").json()["count"] == 3
        by_hour = _get(client, "planning-history", by="hour").json()
        assert sum(row["count"] for row in by_hour["results"]) == 3
        rows = _csv(_get(client, "scorecard", format="csv"))
        assert [row["Carrier"] for row in rows] == [day.a.name, "Total"]


def test_carrier_bs_user_sees_carrier_b_only(day, tenant, api_client_for):
    member = MembershipFactory(
        organization=day.org, role=Role.CARRIER_USER, carrier=day.b, user__username="b@x.com"
    )
    client = api_client_for(member.user)
    assert list(_rows(_get(client, "scorecard").json())) == ["Rival couriers"]
    assert _get(client, "drilldown", metric="on_time_pct").json()["count"] == 0
    assert _get(client, "drilldown", metric="failed_attempts").json()["count"] == 1
    response = client.get(f"{V1}/scorecard/", {**PERIOD, "carrier": day.a.pk})
    assert response.status_code == 400 and "carrier" in response.json()["fields"]


def test_another_organization_sees_none_of_our_rows(day, other_tenant, api_client_for):
    client = api_client_for(other_tenant.user(Role.OWNER))
    card = _get(client, "scorecard").json()
    assert card["rows"] == []
    assert card["total"]["metrics"]["deliveries"]["value"] in (None, 0)
    assert _get(client, "trend").json()["series"] == []
    assert _get(client, "failure-reasons").json()["rows"] == []
    assert _get(client, "lateness").json()["rows"] == []
    assert _get(client, "drilldown", metric="deliveries").json()["count"] == 0
    assert _get(client, "planning-history", by="hour").json()["results"] == []
    rows = _csv(_get(client, "scorecard", format="csv"))
    assert [row["Carrier"] for row in rows] == ["Total"]


def test_dispatchers_and_read_keys_read(day, tenant, api_client_for, api_key_for):
    for client in (
        api_client_for(tenant.user(Role.DISPATCHER)),
        api_client_for(key=api_key_for(tenant, scopes=[Scope.REPORTS_READ])),
    ):
        assert len(_get(client, "scorecard").json()["rows"]) == 2


DOWNLOADS = [
    ("scorecard", {}, "scorecard"),
    ("trend", {"metric": "on_time_pct"}, "trend_on_time_pct"),
    ("failure-reasons", {}, "failure_reasons"),
    ("exceptions", {}, "exceptions"),
    ("lateness", {}, "lateness"),
    ("drilldown", {"metric": "on_time_pct"}, "drilldown_on_time_pct"),
    ("planning-history", {"by": "hour"}, "planning_history_by_hour"),
]


@pytest.mark.parametrize(("path", "params", "stem"), DOWNLOADS)
def test_every_report_downloads_as_csv_and_xlsx(path, params, stem, day, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    as_csv = _get(client, path, format="csv", **params)
    assert as_csv["Content-Type"] == "text/csv; charset=utf-8"
    assert as_csv["Content-Disposition"] == (
        f'attachment; filename="{stem}_2026-11-30_2026-11-30.csv"'
    )
    rows = _csv(as_csv)
    as_xlsx = _get(client, path, format="xlsx", **params)
    assert as_xlsx["Content-Type"].startswith("application/vnd.openxmlformats")
    assert as_xlsx["Content-Disposition"].endswith(f'{stem}_2026-11-30_2026-11-30.xlsx"')
    book = openpyxl.load_workbook(io.BytesIO(as_xlsx.content))
    assert book.sheetnames[1] == "Filters"
    sheet = book.worksheets[0]
    assert sheet.max_row == len(rows) + 1  # the same rows as the CSV, under one header
    filters = {r[0]: r[1] for r in book["Filters"].iter_rows(values_only=True)}
    assert filters["From"] == "2026-11-30"
    json_answer = _get(client, path, **params).json()
    assert json_answer["exports"]["csv"].startswith(f"{V1}/{path}/?")


def test_downloads_carry_the_numbers(day, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    card = {row["Carrier"]: row for row in _csv(_get(client, "scorecard", format="csv"))}
    assert card[day.a.name]["On time (%)"] == "66.67"
    assert card[day.a.name]["On time status"] == "breach"
    assert card["Rival couriers"]["On time status"] == "pass"
    [late] = _csv(_get(client, "drilldown", metric="on_time_pct", format="csv"))
    assert late["Shipment"] == day.references[(day.a.pk, "late", 3)]
    assert late["Minutes late"] == "20.0"
    hours = _csv(_get(client, "planning-history", by="hour", format="csv"))
    assert [(row["Hour"], row["Visits"]) for row in hours] == [
        ("10", "2"),
        ("11", "2"),
        ("12", "1"),
    ]
    # Accept: text/csv is the same download as ?format=csv.
    by_accept = client.get(f"{V1}/lateness/", PERIOD, HTTP_ACCEPT="text/csv")
    assert by_accept.status_code == 200 and by_accept["Content-Type"].startswith("text/csv")


def test_the_scorecard_reads_a_bounded_number_of_queries(
    day, tenant, api_client_for, django_assert_max_num_queries
):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    client.get(f"{V1}/scorecard/", PERIOD)  # warm the session and the organization
    with django_assert_max_num_queries(20):
        _get(client, "scorecard")


def test_recompute_marks_the_days_and_the_roll_up_follows(
    day, tenant, api_client_for, django_capture_on_commit_callbacks
):
    from carriers.sla.rollup.dirty import recompute_dirty

    # Another late delivery for carrier A, after the day was rolled up.
    route = RouteFactory(organization=day.org, carrier=day.a, hub=day.hub, date=DAY)
    shipment = ShipmentFactory(
        organization=day.org,
        carrier=day.a,
        promised_window_start=_utc(10),
        promised_window_end=_utc(12),
    )
    stop = StopFactory(
        organization=day.org,
        route=route,
        status="completed",
        actual_arrival=_utc(12, 40),
        actual_departure=_utc(12, 45),
    )
    StopShipment(organization=day.org, stop=stop, shipment=shipment).save()
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            f"{V1}/recompute/", {"date_from": "2026-11-29", "date_to": "2026-11-30"}
        )
    assert response.status_code == 202, response.content
    assert response.json() == {
        "date_from": "2026-11-29",
        "date_to": "2026-11-30",
        "days": 2,
        "status": "queued",
    }
    assert len(callbacks) == 1
    assert recompute_dirty() == 2  # what the task enqueued after commit runs
    a = _rows(_get(client, "scorecard").json())[day.a.name]
    assert a["metrics"]["on_time_pct"]["value"] == 50.0
    assert a["metrics"]["deliveries"]["value"] == 4
