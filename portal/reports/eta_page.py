"""The data of /reports/eta/: the ETA accuracy report (carriers/sla/eta_accuracy.py) laid out as a
table by horizon, a table by the chosen group and a chart of window coverage over time."""

from __future__ import annotations

from dataclasses import dataclass

from carriers.sla.eta_accuracy import ACCURACY_GROUPS, TARGET_COVERAGE, Accuracy, eta_accuracy
from carriers.sla.query import ReportQuery
from carriers.sla.types import Series
from control_tower.tenancy.actors import Actor
from portal.reports import charts
from portal.reports.pages import common_context
from portal.reports.view_models import export_links

ETA_URL = "/reports/eta/"
GROUP_LABELS = {
    "hour": "Hour of arrival",
    "hub": "Hub",
    "carrier": "Carrier",
    "driver": "Driver",
    "day": "Day",
}
assert set(GROUP_LABELS) == set(ACCURACY_GROUPS)


@dataclass
class Figures:
    """One row's figures as text, and whether its coverage is inside the target band."""

    n: int
    mae: str
    p90: str
    bias: str
    coverage: str
    coverage_status: str | None  # "pass" | "breach" | None (no samples)
    early: str
    late: str
    width: str


def _minutes(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.1f} min" if signed else f"{value:.1f} min"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def figures(accuracy: Accuracy) -> Figures:
    ok = accuracy.coverage_ok
    return Figures(
        n=accuracy.n,
        mae=_minutes(accuracy.mae_min),
        p90=_minutes(accuracy.p90_abs_min),
        bias=_minutes(accuracy.bias_min, signed=True),
        coverage=_share(accuracy.coverage),
        coverage_status=None if ok is None else ("pass" if ok else "breach"),
        early=_share(accuracy.early_share),
        late=_share(accuracy.late_share),
        width=_minutes(accuracy.median_width_min),
    )


def eta_accuracy_page(*, actor: Actor, query: ReportQuery) -> dict:
    report = eta_accuracy(actor=actor, filters=query.filters, group=query.group)
    context = common_context(actor=actor, query=query, url=ETA_URL)
    context["options"]["groups"] = [
        {"value": key, "label": label} for key, label in GROUP_LABELS.items()
    ]
    buckets = [bucket for bucket, _ in report.checkpoints]
    low, high = TARGET_COVERAGE
    context.update(
        form_action=ETA_URL,
        hide_compare=True,
        report=report,
        group_label=GROUP_LABELS[report.group],
        target_words=f"{low * 100:.0f}–{high * 100:.0f}%",
        checkpoints=[
            {"bucket": bucket, "minutes": f"{minutes:g}"} for bucket, minutes in report.checkpoints
        ],
        overall=figures(report.overall),
        horizon_rows=[
            {"bucket": bucket, "figures": figures(accuracy)}
            for bucket, accuracy in report.horizons.items()
        ],
        buckets=buckets,
        group_rows=[
            {
                "key": row.key,
                "label": row.label,
                "figures": figures(row.overall),
                "coverage": [
                    figures(row.by_horizon[bucket]) if bucket in row.by_horizon else None
                    for bucket in buckets
                ],
            }
            for row in report.rows
        ],
        exports=export_links("eta-accuracy", query),
        chart=_coverage_chart(report, buckets),
    )
    return context


def _coverage_chart(report, buckets: list[str]) -> charts.Chart:
    series = [
        Series(
            key=bucket,
            label=f"{bucket} min",
            points=[
                (day, None if by.get(bucket) is None else by[bucket] * 100)
                for day, by in report.coverage_by_day.items()
            ],
        )
        for bucket in buckets
    ]
    low, high = TARGET_COVERAGE
    return charts.line_chart(
        chart_id="coverage-chart",
        title="Window coverage by day and horizon",
        description=(
            "Share of arrivals inside the P10–P90 window that was shown, per service day, one "
            f"line per horizon; the dashed line is the middle of the {low * 100:.0f}–"
            f"{high * 100:.0f}% target band."
        ),
        series=series,
        unit="%",
        y_label="Inside the window",
        target=(low + high) / 2 * 100,
    )
