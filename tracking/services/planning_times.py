"""The times route planning assumes: how long a stop takes, and how much slower than free flow
the roads run at a given local hour.

`DefaultTimes` is what planning always assumed (a flat service time per stop plus a little per
extra parcel, free-flow roads). `learned_times` adapts what an organization's newest ETA model
learned from its finished routes, so that planning gets better by itself once a model is
trained (docs/PLANNING.md "Learned times").

The solvers take one duration matrix and one service time per stop, not time-dependent
travel: `timed_matrix` scales each leg by the mean factor over the hours its destination's
window is open (the leg is driven to reach the stop inside that window), and a stop's service is
taken at the middle of its window. A second solve with the planned arrival hours would refine
both but doubles the solver time for effects smaller than a window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from django.contrib.gis.geos import Point

from tracking.eta.engine import horizon_bucket, travel_factor_at, window_bucket
from tracking.eta.factors import LearnedTimes
from tracking.eta.learned import current_calibration, current_model
from tracking.roads.routing import TravelMatrix

DEFAULT_LABEL = "default"


class PlanningTimes(Protocol):
    label: str  # said in the plan's totals: "default" or "learned v<model version>"
    # How late a route runs one day in ten, 45-60 min into the future: each stop is planned to
    # arrive that long before its window closes (when the window is long enough).
    late_margin_s: int

    def service_s(self, *, address: str, parcels: int, location: Point, local_hour: float) -> float:
        """Seconds at the stop (parking, the door, the parcels)."""

    def travel_factor(self, *, local_hour: float, length_m: float, free_flow_s: float) -> float:
        """Real / free-flow travel time of a leg driven at `local_hour`."""


class DefaultTimes:
    """Planning's assumptions without history: `service_s` per stop, `per_parcel_s` for each
    parcel after the first, roads at free flow."""

    label = DEFAULT_LABEL
    late_margin_s = 0

    def __init__(self, service_s: int = 180, per_parcel_s: int = 20):
        self.stop_s = service_s
        self.per_parcel_s = per_parcel_s

    def service_s(self, *, address: str, parcels: int, location: Point, local_hour: float) -> int:
        return self.stop_s + self.per_parcel_s * (parcels - 1)

    def travel_factor(self, *, local_hour: float, length_m: float, free_flow_s: float) -> float:
        return 1.0


class ModelTimes:
    """What an `EtaModel` knows, as planning times: its travel factors by local hour (hours it
    has too few legs for keep the ETA engine's prior, interpolated the engine's way) and its
    actual / planned dwell ratio applied to the default service times."""

    def __init__(self, *, version: int, by_hour: dict, dwell_factor: float | None, planned):
        self.version = version
        self.by_hour = by_hour
        self.dwell_factor = dwell_factor
        self.planned = planned
        self.label = f"learned v{version}"
        self.late_margin_s = 0
        self._factors: dict[float, float] = {}  # by hour: a plan asks for a handful, many times

    def service_s(self, *, address: str, parcels: int, location: Point, local_hour: float) -> float:
        planned = self.planned.service_s(
            address=address, parcels=parcels, location=location, local_hour=local_hour
        )
        return planned * (self.dwell_factor or 1.0)

    def travel_factor(self, *, local_hour: float, length_m: float, free_flow_s: float) -> float:
        hour = round(local_hour % 24, 2)
        if hour not in self._factors:
            self._factors[hour] = self._at_hour(hour)
        return self._factors[hour]

    def _at_hour(self, local_hour: float) -> float:
        if not self.by_hour:
            return 1.0
        # The engine's rule reads a moment in a zone; a UTC moment at that hour is that hour.
        moment = datetime(2000, 1, 3, tzinfo=UTC) + timedelta(hours=local_hour)
        return travel_factor_at(moment, self.by_hour, UTC)


class TableTimes:
    """The learned tables (tracking/eta/factors.py) as planning times: the dwell of the
    address, its building, its area, its parcels and the hour; the travel factor of the hour
    and the kind of road. What a plan does not know yet is averaged out: who will drive (the
    organization's average crew), which way a leg heads (the mean of both ways). A leg's
    straight-line length is taken as its road length / ROAD_CIRCUITY."""

    ROAD_CIRCUITY = 1.3

    def __init__(self, times: LearnedTimes, weekday: int, late_margin_s: int = 0):
        self.times = times
        self.weekday = weekday
        self.label = f"learned v{times.version}"
        self.late_margin_s = late_margin_s

    def service_s(self, *, address: str, parcels: int, location: Point, local_hour: float) -> float:
        return self.times.dwell_s(
            address=address, parcels=parcels, location=location, local_hour=local_hour
        )

    def travel_factor(self, *, local_hour: float, length_m: float, free_flow_s: float) -> float:
        ways = [
            self.times.travel_factor(
                local_hour=local_hour,
                weekday=self.weekday,
                free_flow_s=free_flow_s,
                crow_m=length_m / self.ROAD_CIRCUITY,
                way=way,
            )
            for way in ("in", "out")
        ]
        return sum(ways) / 2


def learned_times(
    organization, planned: DefaultTimes | None = None, *, weekday: int = 0
) -> PlanningTimes | None:
    """The organization's learned planning times, None before a model has been trained (or
    when it learned nothing usable): the learned tables when the newest `EtaModel` has them
    (`TableTimes`, on the plan's `weekday`), else its hourly factors and dwell ratio
    (`ModelTimes`; `planned`: the service times that ratio scales)."""
    model = current_model(organization)
    if model is None:
        return None
    tables = LearnedTimes.of(model.version, model.factors)
    if tables is not None:
        return TableTimes(tables, weekday, late_margin_s(organization))
    if not model.travel_by_hour and model.dwell_factor is None:
        return None
    return ModelTimes(
        version=model.version,
        by_hour=dict(model.travel_by_hour or {}),
        dwell_factor=model.dwell_factor,
        planned=planned or DefaultTimes(),
    )


# The calibration's bucket the margin reads (45-60 min ahead; its P90 is ~33 min on the demo).
# Chosen on the bench (docs/PLANNING.md): the 60-90 min bucket's (~37 min) cost up to 5.6 %
# more kilometres, the 30-45 min bucket's (~27 min) closed under half the gap on some runs.
MARGIN_AHEAD_MIN = 52.5


def late_margin_s(organization) -> int:
    """The P90 of how much later than their ETA arrivals came, 45 to 60 min ahead, in the
    organization's newest window calibration (tracking/eta/calibration.py); 0 without one."""
    offsets = current_calibration(organization) or {}
    late = offsets.get(window_bucket(MARGIN_AHEAD_MIN)) or offsets.get(
        horizon_bucket(MARGIN_AHEAD_MIN)
    )
    return max(0, round(late[1])) if late else 0


def planning_times(
    organization, service_s: int = 180, per_parcel_s: int = 20, *, weekday: int = 0
) -> PlanningTimes:
    """What a plan uses when the caller does not say: the learned times when there are any,
    else the defaults."""
    planned = DefaultTimes(service_s, per_parcel_s)
    return learned_times(organization, planned, weekday=weekday) or planned


def hour_samples(span: tuple[float, float]) -> list[float]:
    """The middles of the hours of a (from, to) span of local hours (its middle when shorter
    than an hour)."""
    begin, end = span
    if end - begin < 1:
        return [(begin + end) / 2]
    samples, hour = [], begin + 0.5
    while hour < end:
        samples.append(hour)
        hour += 1
    return samples


def timed_matrix(
    matrix: TravelMatrix, times: PlanningTimes, spans: list[tuple[float, float]]
) -> TravelMatrix:
    """`matrix` with each leg i → j scaled by the mean travel factor over the local hours of
    `spans[j]` (when j can be served; 0 is the hub: the shifts). The defaults keep it as is."""
    if type(times) is DefaultTimes:  # free flow (a subclass may say otherwise)
        return matrix
    samples = [hour_samples(span) for span in spans]
    durations = matrix.durations_s
    lengths = matrix.distances_m
    scaled = [
        [
            round(
                free_flow
                * sum(
                    times.travel_factor(
                        local_hour=hour, length_m=lengths[i][j], free_flow_s=free_flow
                    )
                    for hour in samples[j]
                )
                / len(samples[j])
            )
            for j, free_flow in enumerate(row)
        ]
        for i, row in enumerate(durations)
    ]
    return TravelMatrix(scaled, lengths, matrix.source)
