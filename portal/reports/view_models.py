"""What the /reports/ templates show, built from the SLA selectors' results: formatted values,
targets, pass/breach, trends and the links of every number (drill-down, exports, quick picks).
Formatting and links live here, once, so the templates only lay them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from carriers.sla.drill import OUTCOME_CHOICES
from carriers.sla.metrics import METRICS, SCORECARD_COLUMNS, Metric, Unit
from carriers.sla.query import ReportQuery, default_period, local_today, query_string
from carriers.sla.types import MetricValue, Scorecard, ScorecardRow
from control_tower.tenancy.actors import Actor

REPORTS_URL = "/reports/"
DRILLDOWN_URL = "/reports/drilldown/"
COMPARE_URL = "/reports/compare/"
# The REST endpoints of the reports (docs/REPORTS_API.md); the exports are their downloads.
API_URL = "/api/v1/reports/{report}/"
EXPORT_FORMATS = (("csv", "CSV"), ("xlsx", "Excel"))
# How the roll-ups of a period are (re)computed, shown when a period has none.
ROLLUP_COMMAND = "manage.py sla_rollup"

UNIT_SUFFIX = {
    Unit.PCT: "%",
    Unit.MIN: " min",
    Unit.COUNT: "",
    Unit.PER_100: "",
    Unit.STARS: " ★",
    Unit.PER_HOUR: "/h",
    Unit.KM: " km",
}
UNIT_WORDS = {
    Unit.PCT: "%",
    Unit.MIN: "minutes",
    Unit.COUNT: "count",
    Unit.PER_100: "per 100 stops",
    Unit.STARS: "stars of 5",
    Unit.PER_HOUR: "per hour",
    Unit.KM: "km",
}
# A delta of a percentage is in points; of the rest, in the metric's unit.
DELTA_SUFFIX = {**UNIT_SUFFIX, Unit.PCT: " pp"}


def format_value(metric: Metric, value: float | None, *, suffix: dict | None = None) -> str:
    """ "—" for no data (never 0); counts as integers; the rest with one decimal."""
    if value is None:
        return "—"
    unit_suffix = (suffix or UNIT_SUFFIX).get(metric.unit, "")
    if metric.unit == Unit.COUNT:
        return f"{value:,.0f}{unit_suffix}"
    return f"{value:,.1f}{unit_suffix}"


def format_cell(value, zone) -> str:
    """A drill-down cell as text: times in the organization's zone, yes/no, one decimal."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float | Decimal):
        return f"{value:,.1f}"
    return str(value)


def export_links(report: str, query: ReportQuery, **overrides) -> list[dict]:
    """The CSV and Excel downloads of a table: the report's API endpoint, same parameters."""
    return [
        {
            "label": label,
            "format": fmt,
            "url": API_URL.format(report=report)
            + "?"
            + query_string(query, **overrides, format=fmt),
        }
        for fmt, label in EXPORT_FORMATS
    ]


# ---------------------------------------------------------------------------------- outcomes

# The drill-down outcomes of each metric, with their words: named once, in carriers/sla/drill.py.


def outcome_label(metric: str, outcome: str | None) -> str:
    return dict(OUTCOME_CHOICES.get(metric, [])).get(
        outcome or "", (outcome or "").replace("_", " ")
    )


def outcome_links(query: ReportQuery, metric: str, current: str | None) -> list[dict]:
    return [
        {"label": label, "url": drill_url(query, metric, code), "current": code == current}
        for code, label in OUTCOME_CHOICES.get(metric, [])
    ]


def cell_outcome(metric: Metric, row: ScorecardRow) -> str | None:
    """The drill-down a cell opens. The on-time rate misses on both sides of the window: open
    the early deliveries when there are early ones and no late ones (else the list is empty)."""
    if metric.key != "on_time_pct":
        return metric.drill_outcome
    late = row.metrics.get("late_pct")
    early = row.metrics.get("early_pct")
    if (late is None or not late.value) and early is not None and early.value:
        return "early"
    return metric.drill_outcome


# ---------------------------------------------------------------------------------- period


def _day(day: date) -> str:
    return f"{day.strftime('%a')} {day.day} {day.strftime('%b %Y')}"


def period_words(date_from: date, date_to: date) -> str:
    """ "Mon 2 Nov 2026 – Sun 8 Nov 2026 (7 days)"."""
    days = (date_to - date_from).days + 1
    if days == 1:
        return f"{_day(date_from)} (1 day)"
    return f"{_day(date_from)} – {_day(date_to)} ({days} days)"


def quick_picks(actor: Actor, query: ReportQuery, url: str = REPORTS_URL) -> list[dict]:
    """Links to the usual periods, keeping every other filter."""
    today = local_today(actor)
    picks = [
        ("Last 7 days", *default_period(actor, 7)),
        ("Last 30 days", *default_period(actor, 30)),
        ("This month", today.replace(day=1), today),
    ]
    current = (query.filters.date_from, query.filters.date_to)
    return [
        {
            "label": label,
            "url": url
            + "?"
            + query_string(query, **{"from": start.isoformat(), "to": end.isoformat()}),
            "current": (start, end) == current,
        }
        for label, start, end in picks
    ]


# ---------------------------------------------------------------------------------- scorecard


@dataclass
class Cell:
    text: str
    href: str | None = None
    target: str | None = None
    status: str | None = None  # "pass" | "breach" | None
    trend: dict | None = None  # {"arrow", "text", "judgement"} or None


@dataclass
class Row:
    label: str
    key: str
    cells: list[Cell]
    is_total: bool = False
    breaches: int = 0


@dataclass
class Column:
    key: str
    label: str
    unit: str
    description: str


@dataclass
class ScorecardTable:
    columns: list[Column]
    rows: list[Row]
    total: Row
    group: str
    empty: bool
    breaches: int = 0
    notes: list[str] = field(default_factory=list)


def row_narrowing(row: ScorecardRow, group: str) -> dict:
    """The filters that narrow a report to one scorecard row (its drill-down)."""
    if group == "carrier" and row.carrier_id is not None:
        return {"carrier": [row.carrier_id]}
    if group == "hub":
        return {"hub": [row.key]}
    if group == "driver":
        return {"driver": [row.key]}
    if group == "region":
        return {"region": [row.key]}
    if group == "service_type":
        return {"service_type": [row.key]}
    if group == "day":
        return {"from": row.key, "to": row.key}
    return {}


def drill_url(query: ReportQuery, metric: str, outcome: str | None = None, **narrowing) -> str:
    return (
        DRILLDOWN_URL
        + "?"
        + query_string(query, metric=metric, outcome=outcome, page=None, **narrowing)
    )


def trend(metric: Metric, value: MetricValue) -> dict | None:
    """▲/▼ with the delta against the previous period, judged better/worse by the metric's
    direction (volumes are shown, not judged)."""
    if value.delta is None or value.value is None or value.previous is None:
        return None
    delta = value.delta
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    sign = "+" if delta > 0 else "−" if delta < 0 else "±"
    text = f"{sign}{format_value(metric, abs(delta), suffix=DELTA_SUFFIX)}"
    if delta == 0 or metric.higher_is_better is None:
        judgement = "same" if delta == 0 else "neutral"
    else:
        judgement = "better" if (delta > 0) == metric.higher_is_better else "worse"
    words = {"better": "better", "worse": "worse", "same": "no change", "neutral": "change"}
    return {
        "arrow": arrow,
        "text": text,
        "judgement": judgement,
        "label": f"{text} vs previous period ({words[judgement]}); "
        f"was {format_value(metric, value.previous)}",
    }


def cell_for(metric: Metric, value: MetricValue | None, drill: str | None) -> Cell:
    if value is None:
        return Cell(text="—")
    return Cell(
        text=format_value(metric, value.value),
        href=drill if (value.value is not None and metric.drill_outcome) else None,
        target=(
            f"{'≥' if metric.higher_is_better else '≤'} {format_value(metric, value.target)}"
            if value.target is not None and metric.higher_is_better is not None
            else None
        ),
        status=value.status,
        trend=trend(metric, value),
    )


def _row(row: ScorecardRow, card: Scorecard, query: ReportQuery, *, total: bool) -> Row:
    narrowing = {} if total else row_narrowing(row, card.group)
    cells = []
    for key in SCORECARD_COLUMNS:
        metric = METRICS[key]
        value = row.metrics.get(key)
        drill = drill_url(query, key, cell_outcome(metric, row), **narrowing)
        cells.append(cell_for(metric, value, drill))
    return Row(
        label=row.label,
        key=row.key,
        cells=cells,
        is_total=total,
        breaches=sum(1 for cell in cells if cell.status == "breach"),
    )


def has_data(card: Scorecard) -> bool:
    return any(
        value.value is not None for row in card.rows for value in row.metrics.values()
    ) or any(value.value is not None for value in card.total.metrics.values())


def scorecard_table(card: Scorecard, query: ReportQuery) -> ScorecardTable:
    columns = [
        Column(key, METRICS[key].label, UNIT_WORDS[METRICS[key].unit], METRICS[key].description)
        for key in SCORECARD_COLUMNS
    ]
    rows = [_row(row, card, query, total=False) for row in card.rows]
    return ScorecardTable(
        columns=columns,
        rows=rows,
        total=_row(card.total, card, query, total=True),
        group=card.group,
        empty=not has_data(card),
        breaches=sum(row.breaches for row in rows),
    )


# ---------------------------------------------------------------------------------- compare


@dataclass
class CompareLine:
    label: str
    a: str
    b: str
    delta: dict | None
    status_a: str | None
    status_b: str | None


@dataclass
class CompareBlock:
    label: str
    lines: list[CompareLine]


def compare_blocks(card_a: Scorecard, card_b: Scorecard) -> list[CompareBlock]:
    """Per group row (and the total first): each scorecard metric in period A and B and the
    change from B to A."""
    rows_b = {row.key: row for row in card_b.rows}
    pairs = [(card_a.total, card_b.total, "All")]
    pairs += [(row, rows_b.get(row.key), row.label) for row in card_a.rows]
    keys_a = {row.key for row in card_a.rows}
    pairs += [(None, row, row.label) for row in card_b.rows if row.key not in keys_a]
    blocks = []
    for row_a, row_b, label in pairs:
        lines = []
        for key in SCORECARD_COLUMNS:
            metric = METRICS[key]
            a = row_a.metrics.get(key) if row_a else None
            b = row_b.metrics.get(key) if row_b else None
            value_a = a.value if a else None
            value_b = b.value if b else None
            delta = None
            if value_a is not None and value_b is not None:
                delta = trend(
                    metric,
                    MetricValue(key, value_a, previous=value_b, delta=value_a - value_b),
                )
            lines.append(
                CompareLine(
                    label=metric.label,
                    a=format_value(metric, value_a),
                    b=format_value(metric, value_b),
                    delta=delta,
                    status_a=a.status if a else None,
                    status_b=b.status if b else None,
                )
            )
        blocks.append(CompareBlock(label=label, lines=lines))
    return blocks


def previous_of(date_from: date, date_to: date) -> tuple[date, date]:
    days = (date_to - date_from).days + 1
    return date_from - timedelta(days=days), date_from - timedelta(days=1)
