"""Reads of the SLA roll-ups (and, for drill-downs and planning, the facts). Every function
takes the `actor` and narrows to what it may see: a carrier-bound actor only ever sees its own
carrier, a driver nothing (`visible_to`: carrier_scope.py). Reports never read raw pings."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import Aggregate, Avg, Count, FloatField, Sum

from carriers.models import Carrier, Driver
from carriers.sla.drill import drilldown_rows
from carriers.sla.metrics import METRICS
from carriers.sla.models import COUNTERS, DailyRollup, RollupCount, StopFact
from carriers.sla.narrowing import narrowed
from carriers.sla.rollup.buckets import DISPLAY_BANDS, band_code, band_of
from carriers.sla.scoring import apply_previous, apply_targets, carrier_targets, metric_values
from carriers.sla.types import (
    GROUPS,
    Breakdown,
    DrillDown,
    ReportFilters,
    Scorecard,
    ScorecardRow,
    Series,
)
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from exceptions.models import AlertKind
from tracking.errors import InvalidInput
from tracking.models import FailureReason, Hub, ServiceType

# The roll-up column each grouping reads.
GROUP_FIELDS = {
    "carrier": "carrier_id",
    "hub": "hub_id",
    "region": "region",
    "driver": "driver_id",
    "day": "day",
    "service_type": "service_type",
}


def _group_field(group: str) -> str:
    if group not in GROUPS:
        raise InvalidInput(f"Unknown group {group!r}.", fields={"group": list(GROUPS)})
    return GROUP_FIELDS[group]


def _key_text(value) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _sums(actor, filters: ReportFilters, field: str) -> tuple[dict, dict]:
    """({group value: {counter: sum}}, {group value: {lateness bucket: late count}}): two
    queries over the roll-ups."""
    sums = {name: Sum(name) for name in COUNTERS}
    rollups = narrowed(actor, DailyRollup, filters)
    buckets = narrowed(actor, RollupCount, filters).filter(family="lateness")
    counters = {row.pop(field): row for row in rollups.values(field).annotate(**sums)}
    hist: dict = defaultdict(dict)
    for value, code, n in buckets.values_list(field, "code").annotate(total=Sum("n")):
        hist[value][int(code)] = hist[value].get(int(code), 0) + n
    return counters, hist


def _total(counters: dict, hist: dict) -> tuple[dict, dict]:
    """The whole period from the group rows (every roll-up row is in exactly one group, the
    null group included), so the total costs no query."""
    total: dict = {}
    for row in counters.values():
        for name, value in row.items():
            total[name] = total.get(name, 0) + (value or 0)
    merged: dict = {}
    for per_group in hist.values():
        for code, n in per_group.items():
            merged[code] = merged.get(code, 0) + n
    return total, merged


def _labels(actor, group: str, keys) -> dict:
    keys = [k for k in keys if k is not None]
    if group == "carrier":
        return dict(visible_to(actor, Carrier).filter(pk__in=keys).values_list("pk", "name"))
    if group == "hub":
        return dict(visible_to(actor, Hub).filter(pk__in=keys).values_list("pk", "name"))
    if group == "driver":
        return dict(visible_to(actor, Driver).filter(pk__in=keys).values_list("pk", "name"))
    if group == "service_type":
        return {k: ServiceType(k).label if k in ServiceType.values else k for k in keys}
    if group == "day":
        return {k: k.isoformat() for k in keys}
    return {k: k for k in keys}


_NONE_LABELS = {
    "carrier": "No carrier",
    "hub": "No hub",
    "driver": "No driver (carrier feed)",
    "region": "No region",
    "service_type": "No service type (routes, alerts)",
    "day": "—",
}


def _single_carrier(actor: Actor | None, filters: ReportFilters) -> int | None:
    if actor is not None and actor.carrier_id is not None:
        return actor.carrier_id
    return filters.carrier_ids[0] if len(filters.carrier_ids) == 1 else None


def scorecard(
    *, actor: Actor, filters: ReportFilters, group: str = "carrier", compare: bool = True
) -> Scorecard:
    """Every metric of `metrics.METRICS` per group row and in total, judged against each
    carrier's SLA policy (rows of other groups are judged against the targets of the carrier
    filter when exactly one is chosen, else not judged), with the previous period when
    `compare`. Two queries per period plus the labels and the carriers' policies."""
    field = _group_field(group)
    counters, hist = _sums(actor, filters, field)
    total_counters, total_hist = _total(counters, hist)
    previous_filters = filters.previous() if compare else None
    if previous_filters is not None:
        prev_counters, prev_hist = _sums(actor, previous_filters, field)
        prev_total, prev_total_hist = _total(prev_counters, prev_hist)
    keys = list(counters)
    if previous_filters is not None and group != "day":
        # A group that had data only before (a carrier that stopped) still shows its trend.
        keys += [k for k in prev_counters if k not in counters]

    def before_key(key):
        # By day, a row's previous is the same day of the previous period.
        return key - dt.timedelta(days=filters.days) if group == "day" else key

    carrier_ids = set(keys) if group == "carrier" else set()
    single = _single_carrier(actor, filters)
    if single is not None:
        carrier_ids.add(single)
    carriers = {c.pk: c for c in visible_to(actor, Carrier).filter(pk__in=carrier_ids)}
    single_targets = carrier_targets(carriers.get(single)) if single is not None else {}
    labels = _labels(actor, group, keys)

    def build(key, current: dict, lateness: dict, before: dict | None, before_hist) -> dict:
        values = metric_values(current, lateness)
        if group == "carrier":
            apply_targets(values, carrier_targets(carriers.get(key)))
        else:
            apply_targets(values, single_targets)
        if before is not None:
            apply_previous(values, metric_values(before, before_hist))
        return values

    rows = []
    for key in keys:
        previous = prev_counters.get(before_key(key), {}) if previous_filters else None
        values = build(
            key,
            counters.get(key, {}),
            hist.get(key, {}),
            previous,
            prev_hist.get(before_key(key), {}) if previous_filters else {},
        )
        rows.append(
            ScorecardRow(
                group=group,
                key=_key_text(key),
                label=str(labels.get(key, _NONE_LABELS[group] if key is None else key)),
                carrier_id=key if group == "carrier" else single,
                metrics=values,
            )
        )
    rows.sort(key=lambda row: (row.key if group == "day" else row.label.lower(), row.key))
    total_values = metric_values(total_counters, total_hist)
    apply_targets(total_values, single_targets)
    if previous_filters is not None:
        apply_previous(total_values, metric_values(prev_total, prev_total_hist))
    total = ScorecardRow(
        group=group, key="total", label="Total", carrier_id=single, metrics=total_values
    )
    return Scorecard(
        filters=filters, previous_filters=previous_filters, group=group, rows=rows, total=total
    )


def metric_series(
    *, actor: Actor, filters: ReportFilters, metric: str, group: str = "carrier"
) -> list[Series]:
    """A per-day line of `metric` for each group value (the on-time trend per carrier)."""
    if metric not in METRICS:
        raise InvalidInput(f"Unknown metric {metric!r}.", fields={"metric": list(METRICS)})
    field = _group_field(group)
    sums = {name: Sum(name) for name in COUNTERS}
    per_day: dict = defaultdict(dict)
    fields = [field] if field == "day" else [field, "day"]
    for row in narrowed(actor, DailyRollup, filters).values(*fields).annotate(**sums):
        per_day[row[field]][row["day"]] = row
    late: dict = defaultdict(lambda: defaultdict(dict))
    if metric == "lateness_p90_min":
        buckets = narrowed(actor, RollupCount, filters).filter(family="lateness")
        for row in buckets.values(*fields, "code").annotate(t=Sum("n")):
            histogram = late[row[field]][row["day"]]
            histogram[int(row["code"])] = histogram.get(int(row["code"]), 0) + row["t"]
    labels = _labels(actor, group, per_day)
    days = [filters.date_from + dt.timedelta(days=i) for i in range(filters.days)]
    out = []
    for key in per_day:
        points = []
        for day in days:
            counters = per_day[key].get(day)
            value = (
                metric_values(counters, late[key][day])[metric].value
                if counters is not None
                else None
            )
            points.append((day, value))
        label = labels.get(key, _NONE_LABELS[group] if key is None else key)
        out.append(Series(key=_key_text(key), label=str(label), points=points))
    out.sort(key=lambda series: series.label.lower())
    return out


def _breakdown(actor, filters, group, family: str, categories) -> Breakdown:
    field = _group_field(group)
    counts: dict = defaultdict(dict)
    rows = narrowed(actor, RollupCount, filters).filter(family=family)
    for value, code, n in rows.values_list(field, "code").annotate(total=Sum("n")):
        counts[value][code] = counts[value].get(code, 0) + n
    if family == "lateness":
        banded: dict = defaultdict(dict)
        for value, per_code in counts.items():
            for code, n in per_code.items():
                band = band_of(int(code))
                banded[value][band] = banded[value].get(band, 0) + n
        counts = banded
    labels = _labels(actor, group, counts)
    out_rows = [
        (
            _key_text(key),
            str(labels.get(key, _NONE_LABELS[group] if key is None else key)),
            {code: per_code.get(code, 0) for code, _label in categories},
        )
        for key, per_code in counts.items()
    ]
    out_rows.sort(key=lambda row: row[1].lower())
    return Breakdown(categories=list(categories), rows=out_rows)


def failure_reasons(*, actor: Actor, filters: ReportFilters, group: str = "carrier") -> Breakdown:
    """Failed attempts by reason (tracking.models.FailureReason) per group value."""
    return _breakdown(actor, filters, group, "failure", FailureReason.choices)


def exceptions_by_kind(
    *, actor: Actor, filters: ReportFilters, group: str = "carrier"
) -> Breakdown:
    """Alerts by kind per group value."""
    return _breakdown(actor, filters, group, "alert", AlertKind.choices)


def lateness_distribution(
    *, actor: Actor, filters: ReportFilters, group: str = "carrier"
) -> Breakdown:
    """Late deliveries by bucket of minutes late (categories like "0-5", "5-15", ..., "120+")."""
    categories = [
        (band_code(lo, hi), f"{lo}–{hi} min" if hi else f"{lo}+ min") for lo, hi in DISPLAY_BANDS
    ]
    return _breakdown(actor, filters, group, "lateness", categories)


def drilldown(
    *,
    actor: Actor,
    filters: ReportFilters,
    metric: str,
    outcome: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> DrillDown:
    """The rows behind a number: `metric` names the metric, `outcome` which of its rows
    (default `METRICS[metric].drill_outcome`; for failed_attempts a FailureReason value; for
    exceptions_per_100 an AlertKind value)."""
    if metric not in METRICS:
        raise InvalidInput(f"Unknown metric {metric!r}.", fields={"metric": list(METRICS)})
    outcome = outcome or METRICS[metric].drill_outcome
    page = max(1, int(page))
    page_size = max(1, min(500, int(page_size)))
    columns, rows, count = drilldown_rows(
        actor=actor,
        filters=filters,
        metric=metric,
        outcome=outcome,
        page=page,
        page_size=page_size,
    )
    return DrillDown(
        metric=metric,
        outcome=outcome,
        columns=columns,
        rows=rows,
        count=count,
        page=page,
        page_size=page_size,
    )


class _Percentile(Aggregate):
    """PostgreSQL's continuous percentile of a column (an ordered-set aggregate)."""

    function = "percentile_cont"
    name = "Percentile"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float):
        super().__init__(expression, fraction=float(fraction))


PLANNING_KEYS = {"area": "cell", "address": "address", "hour": "hour"}


def planning_history(*, actor: Actor, filters: ReportFilters, by: str = "area") -> list[dict]:
    """Actual dwell and transit times for route planning, by `area` (a grid cell), `address`
    or `hour` of day: count, mean / P50 / P90 dwell seconds, mean / P50 / P90 transit seconds
    from the previous stop (the first stop of a route: from the route's start)."""
    if by not in PLANNING_KEYS:
        raise InvalidInput(f"Unknown grouping {by!r}.", fields={"by": list(PLANNING_KEYS)})
    key = PLANNING_KEYS[by]
    rows = (
        narrowed(actor, StopFact, filters)
        .values(key)
        .annotate(
            count=Count("id"),
            dwell_mean_s=Avg("dwell_s"),
            dwell_p50_s=_Percentile("dwell_s", 0.5),
            dwell_p90_s=_Percentile("dwell_s", 0.9),
            transit_mean_s=Avg("transit_s"),
            transit_p50_s=_Percentile("transit_s", 0.5),
            transit_p90_s=_Percentile("transit_s", 0.9),
        )
        .order_by(key)
    )
    out = []
    for row in rows:
        item = {by: row.pop(key)}
        item.update({k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items()})
        out.append(item)
    return out
