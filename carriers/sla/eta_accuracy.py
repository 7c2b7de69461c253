"""How accurate the ETAs shown were: actual arrivals against the ETA (and window) that was on
show at fixed moments before them, from the `EtaRevision` history (docs/ETA.md "Accuracy").

The sample: for every stop the actor may see that was reached in the period (local service
days of its actual arrival), and for every horizon bucket of the engine (`HORIZON_BUCKETS`),
the newest revision computed at or before the bucket's **checkpoint** (its middle: 7.5, 22.5,
45, 90 and 180 minutes before the arrival). That is what a customer opening the tracking page
at that moment saw. One sample per stop and bucket, so a route that was recomputed more often
does not weigh more. A stop with no revision by then (planned late, never tracked) gives no
sample for that bucket.

The figures per group: n, MAE, P90 of the absolute error, bias (mean of actual − ETA: positive
means the parcel came later than shown), P10–P90 window coverage (actual inside [earliest,
latest]), the shares before and after the window, and the median window width. All in minutes
except coverage and shares (fractions 0–1).

Computed in one SQL statement over the visible stops (`visible_to`: the organization, and a
carrier user's own carrier), so the figures need no roll-up and are never stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection

from carriers.models import Carrier, Driver
from carriers.sla.narrowing import STOP_PATHS, narrow
from carriers.sla.query import ReportQuery, report_query
from carriers.sla.types import ReportFilters
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from tracking.eta.checkpoints import checkpoints
from tracking.models import Hub, Stop

# How an accuracy report can be grouped, besides by horizon (always).
ACCURACY_GROUPS = ("hour", "hub", "carrier", "driver", "day")
# The window is a P10–P90 interval: it should hold the arrival this often (docs/ETA.md).
TARGET_COVERAGE = (0.75, 0.85)
DEFAULT_GROUP = "hour"


def accuracy_query(*, actor: Actor, params) -> ReportQuery:
    """The report parameters (`carriers.sla.query.report_query`, the one parser of every
    report), with this report's groups."""
    return report_query(
        actor=actor, params=params, groups=ACCURACY_GROUPS, default_group=DEFAULT_GROUP
    )


@dataclass
class Accuracy:
    n: int
    mae_min: float | None
    p90_abs_min: float | None
    bias_min: float | None
    coverage: float | None
    early_share: float | None
    late_share: float | None
    median_width_min: float | None

    @property
    def coverage_ok(self) -> bool | None:
        if self.coverage is None:
            return None
        low, high = TARGET_COVERAGE
        return low <= self.coverage <= high


@dataclass
class GroupRow:
    key: str
    label: str
    overall: Accuracy
    by_horizon: dict[str, Accuracy] = field(default_factory=dict)


@dataclass
class AccuracyReport:
    filters: ReportFilters
    group: str
    horizons: dict[str, Accuracy]  # bucket -> figures over every sample of that bucket
    overall: Accuracy
    rows: list[GroupRow]
    # day -> bucket -> coverage (fraction), and day -> samples, for the chart over time
    coverage_by_day: dict[date, dict[str, float | None]]
    samples_by_day: dict[date, int]
    checkpoints: list[tuple[str, float]]

    @property
    def empty(self) -> bool:
        return self.overall.n == 0


_GROUP_SQL = {
    "hour": "extract(hour from s.actual_arrival AT TIME ZONE %(zone)s)::int",
    "hub": "route.hub_id",
    "carrier": "route.carrier_id",
    "driver": "route.driver_id",
    "day": "(s.actual_arrival AT TIME ZONE %(zone)s)::date",
}
assert set(_GROUP_SQL) == set(ACCURACY_GROUPS)

_FIGURES = """
    count(*) AS n,
    avg(abs(err)) AS mae,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY abs(err)) AS p90,
    avg(err) AS bias,
    avg((err_early <= 0 AND err_late <= 0)::int) AS coverage,
    avg((err_early > 0)::int) AS early,
    avg((err_late > 0)::int) AS late,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY width) AS width
"""

# `stops` is the visible, filtered stop ids (a Django subquery, so the scope rule stays in
# carrier_scope.py); the LATERAL picks the revision on show at each checkpoint through the
# (organization, stop, computed_at) index.
_STATEMENT = """
WITH checkpoint(bucket, minutes) AS (
    SELECT * FROM unnest(%(buckets)s::text[], %(minutes)s::float8[])
),
sample AS MATERIALIZED (
    SELECT c.bucket,
           {group} AS grp,
           (s.actual_arrival AT TIME ZONE %(zone)s)::date AS day,
           extract(epoch FROM s.actual_arrival - r.eta) / 60 AS err,
           extract(epoch FROM r.earliest - s.actual_arrival) / 60 AS err_early,
           extract(epoch FROM s.actual_arrival - r.latest) / 60 AS err_late,
           extract(epoch FROM r.latest - r.earliest) / 60 AS width
    FROM tracking_stop s
    JOIN tracking_route route ON route.id = s.route_id AND route.organization_id = s.organization_id
    CROSS JOIN checkpoint c
    CROSS JOIN LATERAL (
        SELECT eta, earliest, latest FROM tracking_etarevision r
        WHERE r.organization_id = s.organization_id AND r.stop_id = s.id
          AND r.computed_at <= s.actual_arrival - make_interval(secs => c.minutes * 60)
        ORDER BY r.computed_at DESC LIMIT 1
    ) r
    WHERE s.organization_id = %(organization)s AND s.id IN ({stops})
)
SELECT grouping(bucket) AS no_bucket, grouping(grp) AS no_grp, grouping(day) AS no_day,
       bucket, grp, day, {figures}
FROM sample
GROUP BY GROUPING SETS ((), (bucket), (grp), (grp, bucket), (day, bucket))
"""


def eta_accuracy(*, actor: Actor, filters: ReportFilters, group: str = "hour") -> AccuracyReport:
    """The accuracy of the ETAs shown for the stops the actor may see, reached in the period."""
    if group not in ACCURACY_GROUPS:
        raise ValueError(f"group must be one of {ACCURACY_GROUPS}")
    organization = actor.organization
    zone = organization.zone
    stops = _reached_stops(actor, filters, zone)
    stops_sql, stops_params = stops.values("id").query.sql_with_params()
    points = checkpoints()
    statement = _STATEMENT.format(group=_GROUP_SQL[group], stops=stops_sql, figures=_FIGURES)
    # The subquery's parameters are positional: turn the named ones into positional too.
    named = {
        "zone": str(zone),
        "organization": organization.pk,
        "buckets": [bucket for bucket, _ in points],
        "minutes": [minutes for _, minutes in points],
    }
    sql, params = _positional(statement, named, stops_params)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _report(rows, filters=filters, group=group, actor=actor, points=points)


def _reached_stops(actor: Actor, filters: ReportFilters, zone):
    start = datetime.combine(filters.date_from, time.min, tzinfo=zone)
    end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=zone)
    stops = visible_to(actor, Stop).filter(actual_arrival__gte=start, actual_arrival__lt=end)
    # A stop with two parcels of the service type appears twice: harmless in `IN (…)`.
    return narrow(stops, filters, STOP_PATHS)


def _positional(statement: str, named: dict, inner: Sequence) -> tuple[str, list]:
    """Replace %(name)s placeholders by %s in order and splice the subquery's own %s params."""
    import re

    params: list = []

    def replace(match: re.Match) -> str:
        if match.group(1) is None:  # a bare %s of the stop subquery, in its order
            params.append(next(inner_params))
            return "%s"
        params.append(named[match.group(1)])
        return "%s"

    inner_params = iter(inner)
    sql = re.sub(r"%\((\w+)\)s|%s", replace, statement)
    return sql, params


def _accuracy(values: Sequence) -> Accuracy:
    n, mae, p90, bias, coverage, early, late, width = values

    def rounded(value, digits=2):
        return None if value is None else round(float(value), digits)

    return Accuracy(
        n=int(n),
        mae_min=rounded(mae),
        p90_abs_min=rounded(p90),
        bias_min=rounded(bias),
        coverage=rounded(coverage, 4),
        early_share=rounded(early, 4),
        late_share=rounded(late, 4),
        median_width_min=rounded(width),
    )


def _report(rows, *, filters, group, actor, points) -> AccuracyReport:
    empty = Accuracy(0, None, None, None, None, None, None, None)
    overall = empty
    horizons: dict[str, Accuracy] = {}
    groups: dict[object, GroupRow] = {}
    by_group_bucket: list[tuple[object, str, Accuracy]] = []
    coverage_by_day: dict[date, dict[str, float | None]] = {}
    samples_by_day: dict[date, int] = {}
    for no_bucket, no_grp, no_day, bucket, grp, day, *figures in rows:
        accuracy = _accuracy(figures)
        if no_bucket and no_grp and no_day:
            overall = accuracy
        elif not no_bucket and no_grp and no_day:
            horizons[bucket] = accuracy
        elif no_bucket and not no_grp:
            groups[grp] = GroupRow(key="" if grp is None else str(grp), label="", overall=accuracy)
        elif not no_bucket and not no_grp:
            by_group_bucket.append((grp, bucket, accuracy))
        else:
            coverage_by_day.setdefault(day, {})[bucket] = accuracy.coverage
            samples_by_day[day] = samples_by_day.get(day, 0) + accuracy.n
    for grp, bucket, accuracy in by_group_bucket:
        groups[grp].by_horizon[bucket] = accuracy
    labels = _labels(actor, group, [key for key in groups if key is not None])
    for key, row in groups.items():
        row.label = labels.get(key) or _unassigned(group)
    order = sorted(
        groups, key=lambda key: (key is None, key if group != "driver" else labels.get(key, ""))
    )
    return AccuracyReport(
        filters=filters,
        group=group,
        horizons={bucket: horizons.get(bucket, empty) for bucket, _ in points},
        overall=overall,
        rows=[groups[key] for key in order],
        coverage_by_day=dict(sorted(coverage_by_day.items())),
        samples_by_day=dict(sorted(samples_by_day.items())),
        checkpoints=points,
    )


def _unassigned(group: str) -> str:
    return {"driver": "No driver"}.get(group, "—")


def _labels(actor: Actor, group: str, keys: list) -> dict:
    if group == "hour":
        return {key: f"{key:02d}:00–{key:02d}:59" for key in keys}
    if group == "day":
        return {key: key.isoformat() for key in keys}
    model = {"hub": Hub, "carrier": Carrier, "driver": Driver}[group]
    rows = visible_to(actor, model).filter(pk__in=keys)
    if group == "driver":
        return {pk: name for pk, name in rows.values_list("pk", "name")}
    return dict(rows.values_list("pk", "name"))
