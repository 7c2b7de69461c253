"""Tables to CSV and Excel, built from hand-made selector answers and read back with `csv` and
openpyxl: BOM, ISO dates, raw numbers in CSV; bold frozen header, number formats, breach
fills with a status in words and a "Filters" sheet in Excel."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import openpyxl
import pytest

from carriers.sla import exports
from carriers.sla.metrics import METRICS
from carriers.sla.types import (
    Breakdown,
    DrillDown,
    MetricValue,
    ReportFilters,
    Scorecard,
    ScorecardRow,
    Series,
)

FILTERS = ReportFilters(date_from=date(2026, 11, 23), date_to=date(2026, 11, 29), carrier_ids=(7,))


def _row(key, label, on_time, status, previous, rating=None):
    metrics = {
        "on_time_pct": MetricValue(
            key="on_time_pct",
            value=on_time,
            target=95.0,
            status=status,
            previous=previous,
            delta=None if previous is None else on_time - previous,
            numerator=3,
            denominator=40,
        ),
        "deliveries": MetricValue(key="deliveries", value=40.0, previous=38.0, delta=2.0),
    }
    if rating is not None:
        metrics["rating_avg"] = MetricValue(
            key="rating_avg", value=rating, target=4.5, status="pass", previous=4.4
        )
    return ScorecardRow(group="carrier", key=key, label=label, carrier_id=int(key), metrics=metrics)


def _card():
    return Scorecard(
        filters=FILTERS,
        previous_filters=FILTERS.previous(),
        group="carrier",
        rows=[
            _row("7", "Ñandú Express", 92.5, "breach", 96.0, rating=4.61),
            _row("8", "Own fleet", 97.25, "pass", None),
        ],
        total=_row("0", "All", 94.9, None, 96.1),
    )


def _csv_rows(content: bytes) -> list[dict]:
    assert content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_scorecard_columns_follow_the_metric_catalog():
    table = exports.scorecard_table(_card())
    metric_columns = [c.key for c in table.columns if c.key in METRICS]
    assert metric_columns == list(METRICS)
    keys = [c.key for c in table.columns]
    # Each targeted metric: value, target, status, previous; a volume: value, previous.
    start = keys.index("on_time_pct")
    assert keys[start : start + 4] == [
        "on_time_pct",
        "on_time_pct__target",
        "on_time_pct__status",
        "on_time_pct__previous",
    ]
    assert keys[keys.index("deliveries") + 1] == "deliveries__previous"
    assert table.filename("xlsx", FILTERS) == "scorecard_2026-11-23_2026-11-29.xlsx"


def test_scorecard_csv_has_raw_numbers_accents_and_status_words():
    rows = _csv_rows(exports.to_csv(exports.scorecard_table(_card())))
    assert [row["Carrier"] for row in rows] == ["Ñandú Express", "Own fleet", "All"]
    first = rows[0]
    assert first["On time (%)"] == "92.5"
    assert first["On time target (%)"] == "95.0"
    assert first["On time status"] == "breach"
    assert first["On time previous (%)"] == "96.0"
    assert first["Customer rating (stars)"] == "4.61"
    assert rows[1]["On time status"] == "pass"
    assert rows[1]["On time previous (%)"] == ""  # no data is empty, never 0
    assert rows[1]["Customer rating (stars)"] == ""


def test_scorecard_xlsx_marks_breaches_and_keeps_the_filters():
    book = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(exports.scorecard_table(_card()))))
    assert book.sheetnames[1] == "Filters"
    sheet = book.worksheets[0]
    header = [cell.value for cell in sheet[1]]
    assert header[0] == "Carrier" and all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "B2"
    value_col = header.index("On time (%)") + 1
    status_col = header.index("On time status") + 1
    breach_value = sheet.cell(row=2, column=value_col)
    assert breach_value.value == 92.5
    assert breach_value.number_format == '0.0"%"'
    assert breach_value.fill.start_color.rgb.endswith("FFC7CE")
    assert sheet.cell(row=2, column=status_col).value == "breach"
    assert sheet.cell(row=2, column=status_col).fill.start_color.rgb.endswith("FFC7CE")
    passing = sheet.cell(row=3, column=value_col)
    assert passing.value == 97.25 and not passing.fill.start_color.rgb.endswith("FFC7CE")
    rating = sheet.cell(row=2, column=header.index("Customer rating (stars)") + 1)
    assert rating.number_format == '0.00" ★"'
    assert sheet.column_dimensions["A"].width == 24
    filters = {row[0]: row[1] for row in book["Filters"].iter_rows(values_only=True)}
    assert filters["From"] == "2026-11-23" and filters["To"] == "2026-11-29"
    assert filters["Carrier ids"] == "7"
    assert filters["Previous period"] == "2026-11-16 to 2026-11-22"


def test_breakdown_table_counts_and_totals():
    breakdown = Breakdown(
        categories=[("not_home", "Recipient not home"), ("refused", "Refused")],
        rows=[("7", "Ñandú Express", {"not_home": 4, "refused": 1}), ("8", "Own fleet", {})],
    )
    table = exports.breakdown_table(
        breakdown, name="failure_reasons", title="Failed attempts", filters=FILTERS, group="hub"
    )
    rows = _csv_rows(exports.to_csv(table))
    assert rows == [
        {"Hub": "Ñandú Express", "Recipient not home": "4", "Refused": "1", "Total": "5"},
        {"Hub": "Own fleet", "Recipient not home": "0", "Refused": "0", "Total": "0"},
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(table))).worksheets[0]
    assert [cell.value for cell in sheet[2]] == ["Ñandú Express", 4, 1, 5]


def test_series_table_has_a_row_per_day_with_iso_dates():
    series = [
        Series("7", "Ñandú", [(date(2026, 11, 23), 90.0), (date(2026, 11, 24), None)]),
        Series("8", "Own", [(date(2026, 11, 23), 99.5), (date(2026, 11, 24), 98.0)]),
    ]
    table = exports.series_table(series, metric="on_time_pct", filters=FILTERS, group="carrier")
    rows = _csv_rows(exports.to_csv(table))
    assert rows == [
        {"Day": "2026-11-23", "Ñandú (%)": "90.0", "Own (%)": "99.5"},
        {"Day": "2026-11-24", "Ñandú (%)": "", "Own (%)": "98.0"},
    ]
    sheet = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(table))).worksheets[0]
    assert sheet.cell(row=2, column=1).value == datetime(2026, 11, 23)
    assert sheet.cell(row=2, column=1).number_format == "yyyy-mm-dd"
    assert table.name == "trend_on_time_pct"


def test_drilldown_table_keeps_columns_and_the_console_link():
    delivered = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    drill = DrillDown(
        metric="on_time_pct",
        outcome="late",
        columns=[("reference", "Shipment"), ("delivered_at", "Delivered"), ("late_min", "Late")],
        rows=[
            {
                "reference": "ORD-1",
                "delivered_at": delivered,
                "late_min": 17.5,
                "links": {"console": "/console/?stop=3", "custody": "/custody/1"},
            }
        ],
        count=1,
        page=1,
        page_size=50,
    )
    table = exports.drilldown_table(drill, filters=FILTERS)
    [row] = _csv_rows(exports.to_csv(table))
    assert row == {
        "Shipment": "ORD-1",
        "Delivered": "2026-11-24T15:30:00+00:00",
        "Late": "17.5",
        "Console": "/console/?stop=3",
    }
    sheet = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(table))).worksheets[0]
    assert sheet.cell(row=2, column=2).value == datetime(2026, 11, 24, 15, 30)


def test_planning_history_table_types_known_columns():
    rows = [
        {"key": "-29.95,-71.25", "count": 12, "dwell_mean_s": 95.5, "transit_p90_s": 410.0},
        {"key": "-29.96,-71.25", "count": 3, "dwell_mean_s": None, "transit_p90_s": 380.0},
    ]
    table = exports.planning_history_table(rows, by="area", filters=FILTERS)
    parsed = _csv_rows(exports.to_csv(table))
    assert parsed[0] == {
        "Key": "-29.95,-71.25",
        "Visits": "12",
        "Dwell mean (s)": "95.5",
        "Transit P90 (s)": "410.0",
    }
    assert parsed[1]["Dwell mean (s)"] == ""
    sheet = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(table))).worksheets[0]
    assert sheet.cell(row=2, column=3).number_format == '0" s"'
    assert table.filename("csv", FILTERS) == "planning_history_by_area_2026-11-23_2026-11-29.csv"


def test_an_unknown_format_is_refused():
    table = exports.scorecard_table(_card())
    with pytest.raises(ValueError, match="csv, xlsx"):
        exports.render(table, "pdf")
