"""What the SLA selectors answer: plain dataclasses the API, the pages, the exports and the
weekly e-mail all render. This is the contract between the roll-ups and their readers."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

# How a scorecard can be grouped (rows); "carrier" is the ops manager's default.
GROUPS = ("carrier", "hub", "region", "driver", "day", "service_type")


@dataclass(frozen=True)
class ReportFilters:
    """A period of service days (inclusive, in the organization's time zone) and optional
    narrowing. Empty tuples mean "all"."""

    date_from: date
    date_to: date
    carrier_ids: tuple[int, ...] = ()
    hub_ids: tuple[int, ...] = ()
    regions: tuple[str, ...] = ()
    service_types: tuple[str, ...] = ()
    driver_ids: tuple[int, ...] = ()

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def previous(self) -> ReportFilters:
        """The period of the same length just before this one, same narrowing."""
        return replace(
            self,
            date_from=self.date_from - timedelta(days=self.days),
            date_to=self.date_from - timedelta(days=1),
        )


@dataclass
class MetricValue:
    key: str
    value: float | None  # None: no data in the period (shown as "—", never as 0)
    target: float | None = None
    status: str | None = None  # "pass" | "breach" | None (metrics.judge)
    previous: float | None = None  # the same metric over filters.previous()
    delta: float | None = None  # value - previous
    # How many rows the metric's default drill-down lists (on-time rate: the late deliveries);
    # None where the roll-up does not count them (scoring.DRILL_COUNTS).
    numerator: int | None = None
    denominator: int | None = None  # the population, e.g. deliveries with a promised window


@dataclass
class ScorecardRow:
    group: str  # one of GROUPS
    key: str  # the group value as text: carrier id, hub id, region name, ISO day…
    label: str
    carrier_id: int | None
    metrics: dict[str, MetricValue] = field(default_factory=dict)


@dataclass
class Scorecard:
    filters: ReportFilters
    previous_filters: ReportFilters | None
    group: str
    rows: list[ScorecardRow]
    total: ScorecardRow


@dataclass
class Series:
    """One line of a trend chart: a value per service day (None: no data that day)."""

    key: str
    label: str
    points: list[tuple[date, float | None]]


@dataclass
class Breakdown:
    """Counts by a category (failure reason, exception kind, lateness bucket) per group row."""

    categories: list[tuple[str, str]]  # (code, label), in display order
    rows: list[tuple[str, str, dict[str, int]]]  # (group key, group label, {code: count})


@dataclass
class DrillDown:
    """The deliveries, attempts, stops or routes behind a number, a page at a time."""

    metric: str
    outcome: str | None
    columns: list[tuple[str, str]]  # (key, label) of each row field, in order
    rows: list[dict]  # each has the column keys plus "links": {"console": url, "custody": url}
    count: int
    page: int
    page_size: int
