"""Reads of the SLA roll-ups (contract; implemented by the SLA work). Every function takes the
`actor` and narrows to what it may see: a carrier-bound actor only ever sees its own carrier."""

from __future__ import annotations

from carriers.sla.types import Breakdown, DrillDown, ReportFilters, Scorecard, Series
from control_tower.tenancy.actors import Actor


def scorecard(
    *, actor: Actor, filters: ReportFilters, group: str = "carrier", compare: bool = True
) -> Scorecard:
    """Every metric of `metrics.METRICS` per group row and in total, judged against each
    carrier's SLA policy (rows of other groups are judged against the targets of the carrier
    filter when exactly one is chosen, else not judged), with the previous period when
    `compare`."""
    raise NotImplementedError


def metric_series(
    *, actor: Actor, filters: ReportFilters, metric: str, group: str = "carrier"
) -> list[Series]:
    """A per-day line of `metric` for each group value (the on-time trend per carrier)."""
    raise NotImplementedError


def failure_reasons(*, actor: Actor, filters: ReportFilters, group: str = "carrier") -> Breakdown:
    """Failed attempts by reason (tracking.models.FailureReason) per group value."""
    raise NotImplementedError


def exceptions_by_kind(
    *, actor: Actor, filters: ReportFilters, group: str = "carrier"
) -> Breakdown:
    """Alerts by kind per group value."""
    raise NotImplementedError


def lateness_distribution(
    *, actor: Actor, filters: ReportFilters, group: str = "carrier"
) -> Breakdown:
    """Late deliveries by bucket of minutes late (categories like "0-5", "5-15", ..., "120+")."""
    raise NotImplementedError


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
    raise NotImplementedError


def planning_history(*, actor: Actor, filters: ReportFilters, by: str = "area") -> list[dict]:
    """Actual dwell and transit times for route planning, by `area` (a grid cell), `address`
    or `hour` of day: count, mean / P50 / P90 dwell seconds, mean / P50 / P90 transit seconds
    from the previous stop."""
    raise NotImplementedError
