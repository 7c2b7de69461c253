"""The selectors' dataclasses as JSON-ready dicts (the shapes `serializers.py` describes). Plain
functions, so a 20-carrier × 22-metric scorecard costs no serializer machinery."""

from __future__ import annotations

from carriers.sla.metrics import METRICS, Metric
from carriers.sla.types import Breakdown, MetricValue, ReportFilters, Scorecard, ScorecardRow


def period(filters: ReportFilters | None) -> dict | None:
    if filters is None:
        return None
    return {
        "date_from": filters.date_from.isoformat(),
        "date_to": filters.date_to.isoformat(),
        "days": filters.days,
    }


def metric_definition(metric: Metric) -> dict:
    return {
        "key": metric.key,
        "label": metric.label,
        "unit": metric.unit,
        "higher_is_better": metric.higher_is_better,
        "has_target": metric.target_field is not None,
        "description": metric.description,
    }


def metric_value(value: MetricValue) -> dict:
    return {
        "value": value.value,
        "target": value.target,
        "status": value.status,
        "previous": value.previous,
        "delta": value.delta,
        "numerator": value.numerator,
        "denominator": value.denominator,
    }


def scorecard_row(row: ScorecardRow) -> dict:
    return {
        "group": row.group,
        "key": row.key,
        "label": row.label,
        "carrier_id": row.carrier_id,
        "breaches": sum(1 for value in row.metrics.values() if value.status == "breach"),
        "metrics": {key: metric_value(value) for key, value in row.metrics.items()},
    }


def scorecard(card: Scorecard) -> dict:
    return {
        "period": period(card.filters),
        "previous_period": period(card.previous_filters),
        "group": card.group,
        "metrics": [metric_definition(metric) for metric in METRICS.values()],
        "rows": [scorecard_row(row) for row in card.rows],
        "total": scorecard_row(card.total),
    }


def breakdown(result: Breakdown) -> dict:
    codes = [code for code, _ in result.categories]
    return {
        "categories": [{"code": code, "label": label} for code, label in result.categories],
        "rows": [
            {
                "key": key,
                "label": label,
                "counts": {code: counts.get(code, 0) for code in codes},
                "total": sum(counts.get(code, 0) for code in codes),
            }
            for key, label, counts in result.rows
        ],
    }
