"""What the scorecard table shows for each number (portal/reports/view_models.py): value with
its unit, "—" for no data, target, pass/breach, the trend judged by the metric's direction, and
the drill-down link narrowed to the row."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlsplit

from carriers.sla.metrics import METRICS, SCORECARD_COLUMNS
from carriers.sla.query import ReportQuery
from carriers.sla.types import MetricValue, ReportFilters, Scorecard, ScorecardRow
from portal.reports import view_models as vm

FILTERS = ReportFilters(date_from=date(2026, 11, 2), date_to=date(2026, 11, 8))
QUERY = ReportQuery(filters=FILTERS)


def card() -> Scorecard:
    andes = ScorecardRow(
        "carrier",
        "7",
        "Andes 3PL",
        7,
        {
            "on_time_pct": MetricValue(
                "on_time_pct", 82.5, target=95.0, status="breach", previous=90.0, delta=-7.5
            ),
            "lateness_p90_min": MetricValue(
                "lateness_p90_min", 41.0, target=30.0, status="breach", previous=50.0, delta=-9
            ),
            "deliveries": MetricValue("deliveries", 1234, previous=1000, delta=234),
            "rating_avg": MetricValue("rating_avg", None, target=4.5),
        },
    )
    total = ScorecardRow("carrier", "", "All carriers", None, {
        "on_time_pct": MetricValue("on_time_pct", 88.0),
    })  # fmt: skip
    return Scorecard(FILTERS, FILTERS.previous(), "carrier", [andes], total)


def test_values_targets_breaches_and_trends():
    table = vm.scorecard_table(card(), QUERY)
    assert [c.key for c in table.columns] == SCORECARD_COLUMNS
    row = table.rows[0]
    cells = dict(zip(SCORECARD_COLUMNS, row.cells, strict=True))
    on_time = cells["on_time_pct"]
    assert (on_time.text, on_time.target, on_time.status) == ("82.5%", "≥ 95.0%", "breach")
    # Down is worse for a rate where higher is better...
    assert on_time.trend["arrow"] == "▼" and on_time.trend["text"] == "−7.5 pp"
    assert on_time.trend["judgement"] == "worse"
    # ...and better for lateness, where lower is better.
    p90 = cells["lateness_p90_min"]
    assert p90.trend["judgement"] == "better" and p90.target == "≤ 30.0 min"
    # A volume is shown with its change, never judged.
    assert (
        cells["deliveries"].text == "1,234" and cells["deliveries"].trend["judgement"] == "neutral"
    )
    # No data is "—" with no link; a missing metric too.
    assert cells["rating_avg"].text == "—" and cells["rating_avg"].href is None
    assert cells["scan_compliance_pct"].text == "—"
    assert row.breaches == 2 and table.breaches == 2 and not table.empty


def test_every_number_links_to_its_drill_down_narrowed_to_its_row():
    table = vm.scorecard_table(card(), QUERY)
    link = urlsplit(table.rows[0].cells[SCORECARD_COLUMNS.index("on_time_pct")].href)
    assert link.path == "/reports/drilldown/"
    params = parse_qs(link.query)
    assert params["metric"] == ["on_time_pct"]
    assert params["outcome"] == [METRICS["on_time_pct"].drill_outcome]
    assert params["carrier"] == ["7"]
    assert params["from"] == ["2026-11-02"] and params["to"] == ["2026-11-08"]
    total = urlsplit(table.total.cells[0].href)
    assert "carrier" not in parse_qs(total.query)


def test_a_day_row_narrows_the_period_to_that_day():
    row = ScorecardRow("day", "2026-11-04", "Wed 4 Nov", None, {})
    assert vm.row_narrowing(row, "day") == {"from": "2026-11-04", "to": "2026-11-04"}
    assert vm.row_narrowing(ScorecardRow("region", "Norte", "Norte", None), "region") == {
        "region": ["Norte"]
    }


def test_an_empty_period_is_empty():
    empty = Scorecard(FILTERS, None, "carrier", [], ScorecardRow("carrier", "", "All", None, {}))
    assert vm.scorecard_table(empty, QUERY).empty


def test_exports_point_at_the_reports_api_with_the_same_parameters():
    links = vm.export_links("drilldown", QUERY, metric="on_time_pct", outcome="late")
    assert [link["label"] for link in links] == ["CSV", "Excel"]
    url = urlsplit(links[1]["url"])
    assert url.path == "/api/v1/reports/drilldown/"
    params = parse_qs(url.query)
    assert params["format"] == ["xlsx"] and params["outcome"] == ["late"]
    assert params["from"] == ["2026-11-02"]


def test_the_period_in_words():
    assert vm.period_words(date(2026, 11, 2), date(2026, 11, 8)) == (
        "Mon 2 Nov 2026 – Sun 8 Nov 2026 (7 days)"
    )
    assert vm.period_words(date(2026, 11, 2), date(2026, 11, 2)) == "Mon 2 Nov 2026 (1 day)"


def test_compare_blocks_put_the_total_first_and_keep_rows_of_either_period():
    a = card()
    gig = ScorecardRow("carrier", "9", "Gig", 9, {"on_time_pct": MetricValue("on_time_pct", 70.0)})
    all_b = ScorecardRow(
        "carrier", "", "All", None, {"on_time_pct": MetricValue("on_time_pct", 80.0)}
    )
    b = Scorecard(FILTERS.previous(), None, "carrier", [gig], all_b)
    blocks = vm.compare_blocks(a, b)
    assert [block.label for block in blocks] == ["All", "Andes 3PL", "Gig"]
    total_on_time = blocks[0].lines[0]
    assert (total_on_time.a, total_on_time.b) == ("88.0%", "80.0%")
    assert total_on_time.delta["text"] == "+8.0 pp" and total_on_time.delta["judgement"] == "better"
    assert blocks[2].lines[0].a == "—" and blocks[2].lines[0].delta is None


def test_drill_down_cells_are_text_in_the_organizations_zone():
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Santiago")
    at = datetime(2026, 11, 4, 15, 30, tzinfo=UTC)
    assert vm.format_cell(at, zone) == "2026-11-04 12:30"
    assert vm.format_cell(None, zone) == "—" and vm.format_cell("", zone) == "—"
    assert vm.format_cell(True, zone) == "yes" and vm.format_cell(12.345, zone) == "12.3"
    assert vm.format_cell(date(2026, 11, 4), zone) == "2026-11-04"
    assert vm.format_cell(7, zone) == "7" and vm.format_cell("late", zone) == "late"


def test_the_on_time_cell_opens_the_early_deliveries_when_none_are_late():
    row = ScorecardRow("carrier", "7", "Andes", 7, {
        "on_time_pct": MetricValue("on_time_pct", 60.0),
        "late_pct": MetricValue("late_pct", 0.0),
        "early_pct": MetricValue("early_pct", 40.0),
    })  # fmt: skip
    assert vm.cell_outcome(METRICS["on_time_pct"], row) == "early"
    row.metrics["late_pct"] = MetricValue("late_pct", 5.0)
    assert vm.cell_outcome(METRICS["on_time_pct"], row) == "late"
    assert vm.cell_outcome(METRICS["pod_compliance_pct"], row) == "pod_missing"
