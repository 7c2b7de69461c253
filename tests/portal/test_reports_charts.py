"""The SVG charts of /reports/ (portal/reports/charts.py): valid XML, accessible (role, title,
desc, axis labels, legend), one path per series, and the same numbers in the data table."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

from carriers.sla.types import Breakdown, Series
from portal.reports import charts

SVG = "{http://www.w3.org/2000/svg}"
DAY = date(2026, 11, 2)


def parse(chart: charts.Chart) -> ET.Element:
    root = ET.fromstring(str(chart.svg))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"{SVG}title").get("id") == title_id
    assert root.find(f"{SVG}desc").get("id") == desc_id
    assert root.find(f"{SVG}title").text == chart.title
    assert root.find(f"{SVG}desc").text == chart.description
    return root


def texts(root: ET.Element) -> list[str]:
    return [el.text for el in root.iter(f"{SVG}text")]


def series(key, label, values):
    return Series(key, label, [(DAY + timedelta(days=i), v) for i, v in enumerate(values)])


def test_the_on_time_trend_has_one_path_per_carrier_a_target_line_and_a_legend():
    lines = [
        series("7", "Andes 3PL", [91.0, 88.5, None, 95.0]),
        series("3", "Own fleet <&>", [99.0, 97.0, 98.0, 96.5]),
    ]
    chart = charts.line_chart(
        chart_id="chart-on-time",
        title="On-time rate per carrier, by day",
        description="One line per carrier.",
        series=lines,
        unit="%",
        y_label="On time (%)",
        target=95.0,
    )
    root = parse(chart)
    paths = [p for p in root.iter(f"{SVG}path") if p.get("class") == "series"]
    assert [p.get("data-key") for p in paths] == ["7", "3"]
    # The day without data is a gap: the pen lifts (a second M), the line does not drop to 0.
    assert paths[0].get("d").count("M") == 2
    assert paths[1].get("d").count("M") == 1 and paths[1].get("d").count("L") == 3
    # Stable colours: carrier 3 sorts before carrier 7 whatever the order of the series.
    assert paths[1].get("stroke") == charts.PALETTE[0]
    assert paths[0].get("stroke") == charts.PALETTE[1]
    words = texts(root)
    assert "On time (%)" in words and "Service day" in words
    assert "Own fleet <&>" in words and "Andes 3PL" in words and "Target" in words
    assert [el for el in root.iter(f"{SVG}line") if el.get("class") == "target"]
    assert chart.headers == ["Day", "Andes 3PL", "Own fleet <&>", "Target"]
    assert chart.rows[2] == ["2026-11-04", "—", "98%", "95%"]
    assert chart.rows[1][1] == "88.5%"


def test_colours_do_not_move_when_a_filter_narrows_the_chart():
    everyone = charts.palette_for(["12", "3", "7"])
    assert everyone == {"3": charts.PALETTE[0], "7": charts.PALETTE[1], "12": charts.PALETTE[2]}
    only_twelve = charts.line_chart(
        chart_id="c",
        title="t",
        description="d",
        series=[series("12", "Regional", [80.0])],
        y_label="y",
        colours=everyone,
    )
    path = next(p for p in parse(only_twelve).iter(f"{SVG}path") if p.get("class") == "series")
    assert path.get("stroke") == charts.PALETTE[2]


def test_failure_reasons_stack_per_carrier_with_a_legend_of_the_reasons_present():
    breakdown = Breakdown(
        categories=[("not_home", "Not home"), ("refused", "Refused"), ("weather", "Weather")],
        rows=[("3", "Own fleet", {"not_home": 4, "refused": 1}), ("7", "Andes", {"not_home": 2})],
    )
    chart = charts.stacked_bars(
        chart_id="chart-failures",
        title="Failed attempts by reason",
        description="Stacked by reason.",
        breakdown=breakdown,
        y_label="Failed attempts",
        x_label="Carrier",
    )
    root = parse(chart)
    bars = [g for g in root.iter(f"{SVG}g") if g.get("class") == "bar"]
    assert [g.get("data-key") for g in bars] == ["3", "7"]
    assert len(bars[0].findall(f"{SVG}rect")) == 2 and len(bars[1].findall(f"{SVG}rect")) == 1
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    assert [t.text for t in legend.iter(f"{SVG}text")] == ["Not home", "Refused"]
    assert "Failed attempts" in texts(root) and "Carrier" in texts(root)
    assert chart.headers == ["", "Not home", "Refused", "Weather", "Total"]
    assert chart.rows == [["Own fleet", "4", "1", "0", "5"], ["Andes", "2", "0", "0", "2"]]
    # The tallest bar reaches the rounded axis top (5 of 5).
    heights = [float(r.get("height")) for r in bars[0].findall(f"{SVG}rect")]
    plot_h = charts.HEIGHT - charts.MARGIN_TOP - charts.MARGIN_BOTTOM
    assert abs(sum(heights) - plot_h) < 0.5


def test_the_lateness_histogram_sums_the_buckets_over_carriers():
    breakdown = Breakdown(
        categories=[("0-5", "0–5"), ("5-15", "5–15"), ("120+", "120+")],
        rows=[("3", "Own", {"0-5": 3, "5-15": 1}), ("7", "Andes", {"0-5": 1, "120+": 2})],
    )
    chart = charts.histogram(
        chart_id="chart-lateness",
        title="Lateness distribution",
        description="Late deliveries by minutes late.",
        breakdown=breakdown,
        y_label="Late deliveries",
        x_label="Minutes late",
    )
    root = parse(chart)
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert [b.get("data-key") for b in bars] == ["0-5", "5-15", "120+"]
    assert [b.find(f"{SVG}title").text for b in bars] == ["0–5: 4", "5–15: 1", "120+: 2"]
    assert chart.rows == [["0–5", "3", "1", "4"], ["5–15", "1", "0", "1"], ["120+", "0", "2", "2"]]
    assert "Minutes late" in texts(root)


def test_no_data_is_said_not_drawn_as_zero():
    empty_line = charts.line_chart(
        chart_id="c", title="t", description="d", series=[series("3", "Own", [None, None])],
        y_label="y",
    )  # fmt: skip
    empty_bars = charts.stacked_bars(
        chart_id="b", title="t", description="d", breakdown=Breakdown([("x", "X")], []),
        y_label="y", x_label="x",
    )  # fmt: skip
    for chart in (empty_line, empty_bars):
        root = parse(chart)
        assert chart.empty
        assert "No data for this period" in texts(root)
        assert not list(root.iter(f"{SVG}path"))
