"""Measuring ETAs against what really happened, side by side with baselines.

For each held-out day, the simulator's hidden world (tracking/simulation/world.py) drives every
route of the day from its hub through all its stops: that is the truth (arrival per stop, true
position over time). Every `step_s` seconds of each route, each method predicts the arrival of
every stop not reached yet, from where the vehicle truly is at that moment; the error is the
prediction minus the true arrival, bucketed by horizon (how long before the arrival it was made).

Methods:
- `oracle`: the bound (tracking/eta/oracle.py): every leg and visit at its expected duration in
  the hidden world, knowing its parameters but not the day's random draws;
- `live`: exactly what the live ETAs show: the learned tables (tracking/eta/factors.py, when
  trained; else the hourly factors) with adaptive conformal windows (tracking/eta/conformal.py)
  run online over the held-out days: a prediction gets the window of its predicted-horizon
  bucket from the arrivals already known at its moment (the calibrated window while a bucket
  has fewer than conformal.MIN_SAMPLES), and each arrival feeds the buckets of the predictions
  made for it;
- `by_hour`: the previous live estimator, travel factors by local hour and the organization's
  dwell factor, with windows calibrated once on the days before (tracking/eta/calibration.py);
- `learned`: the gradient-boosted quantile regressors (tracking/eta/learning.py), a candidate
  not used live;
- `network_prior`: the cold-start estimator (tracking/eta/engine.py: road network ×1.15,
  planned service, P10–P90 window from the prior spread);
- `free_flow`: road-network free-flow times plus the planned service times, no correction;
- `static_plan`: the planned arrival, never updated;
- `straight_line`: straight lines × 1.3 at 25 km/h plus the planned service times.
Everything learned comes from the days before the held-out ones, never from them.

Every method knows what the platform knows at that moment: where the vehicle is and, when it
stands at a stop, since when (the dwell still to come delays everything after it).
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.gis.geos import Point

from tracking.eta import conformal
from tracking.eta.engine import (
    HORIZON_BUCKETS,
    calibrated_windows,
    dwell_s,
    estimate,
    horizon_bucket,
    learned_etas,
    live_windows,
    remaining_dwell_s,
    window_bucket,
)
from tracking.eta.factors import LearnedTimes
from tracking.eta.oracle import OracleRoute, OracleVisit, oracle_arrivals
from tracking.models import Route
from tracking.roads.routing import straight_line_matrix, travel_matrix, vehicle_leg
from tracking.simulation.timeline import route_timeline, stop_plan
from tracking.simulation.world import World

BUCKETS = HORIZON_BUCKETS
bucket_of = horizon_bucket
METHODS = [
    "oracle",
    "live",
    "by_hour",
    "learned",
    "network_prior",
    "free_flow",
    "static_plan",
    "straight_line",
]
WITH_WINDOWS = {"network_prior", "live", "by_hour", "learned"}
# The live windows once more, bucketed by the horizon they predicted instead of the true one:
# conditioning on the outcome (a stop that turned out 2 h away) favours the predictions that
# turned out late, which no window sized before the arrival can cover as often.
BY_PREDICTED = "live_by_predicted_horizon"


@dataclass
class Tally:
    errors_min: list[float] = field(default_factory=list)
    covered: list[bool] = field(default_factory=list)
    widths_min: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        absolute = sorted(abs(e) for e in self.errors_min)
        n = len(absolute)
        if not n:
            return {"n": 0}
        row = {
            "n": n,
            "mae_min": round(statistics.fmean(absolute), 2),
            # Positive: predicted later than the truth (the customer waits less than told).
            "bias_min": round(statistics.fmean(self.errors_min), 2),
            "p90_abs_min": round(absolute[min(n - 1, int(0.9 * n))], 2),
            "within_5_min_pct": round(100 * sum(a <= 5 for a in absolute) / n, 1),
            "within_10_min_pct": round(100 * sum(a <= 10 for a in absolute) / n, 1),
        }
        if self.covered:
            row["p10_p90_coverage_pct"] = round(100 * sum(self.covered) / len(self.covered), 1)
            row["median_width_min"] = round(statistics.median(self.widths_min), 1)
        return row


def _position_at(samples, moment: datetime, fallback: Point) -> Point:
    last = None
    for sample in samples:
        if sample.t > moment:
            break
        last = sample
    return fallback if last is None else Point(last.lon, last.lat, srid=4326)


@dataclass
class _Replay:
    """One route of a held-out day as the hidden world drove it, and what every method needs
    from its plan."""

    route: Route
    stops: list
    plans: list
    points: list[Point]
    samples: list
    arrival: dict
    departure: dict
    road: object
    straight: object
    dwells: list[float]
    dwells_live: list[float]
    parcels: list[int]
    driver: str


@dataclass
class _Known:
    """What the live ETAs would have used, learned on days before the held-out ones."""

    zone: ZoneInfo
    world: World
    learned: object = None
    travel_by_hour: dict | None = None
    dwell_factor: float | None = None
    calibration: dict | None = None
    times: LearnedTimes | None = None
    live_calibration: dict | None = None


def evaluate_days(
    organization,
    days: list[date],
    world: World,
    *,
    step_s: int = 300,
    learned=None,
    travel_by_hour: dict | None = None,
    dwell_factor: float | None = None,
    calibration: dict | None = None,
    times: LearnedTimes | None = None,
    live_calibration: dict | None = None,
) -> dict:
    """{method: {bucket: summary}} over the days' routes (needs the organization in scope).
    `learned`: a LearnedEstimator trained on days before the held-out ones (time split).
    `travel_by_hour`, `dwell_factor`, `times` (the learned tables) and `calibration`
    ({predicted-horizon bucket: (P10 s, P90 s)}): what the live ETAs would have used, learned on
    days before the held-out ones."""
    known = _Known(
        zone=ZoneInfo(organization.time_zone),
        world=world,
        learned=learned,
        travel_by_hour=travel_by_hour,
        dwell_factor=dwell_factor,
        calibration=calibration,
        times=times,
        live_calibration=live_calibration,
    )
    tallies = {m: {bucket_of(lo): Tally() for lo, _hi in BUCKETS} for m in METHODS}
    shown: list[_Shown] = []  # the live predictions, for the conformal windows
    for day in days:
        routes = (
            Route.objects.filter(date=day)
            .select_related("hub", "driver", "carrier")
            .order_by("code")
        )
        for route in routes:
            replay = _replay(route, world, day, known)
            if replay is None:
                continue
            moment = route.planned_start
            while moment < max(replay.arrival.values()):
                ahead = [i for i, s in enumerate(replay.stops) if replay.arrival[s.pk] > moment]
                predictions = _predictions(replay, moment, ahead, known)
                _count(tallies, replay, moment, ahead, predictions, shown)
                moment += timedelta(seconds=step_s)
    tallies[BY_PREDICTED] = {bucket_of(lo): Tally() for lo, _hi in BUCKETS}
    _count_conformal(tallies["live"], tallies[BY_PREDICTED], shown)
    return {m: {b: t.summary() for b, t in by_bucket.items()} for m, by_bucket in tallies.items()}


@dataclass(frozen=True)
class _Shown:
    """One `live` prediction: when it was made, for which arrival, and its window."""

    moment: datetime
    truth_at: datetime
    eta: datetime
    low: datetime
    high: datetime


def _count_conformal(
    tallies: dict[str, Tally], by_predicted: dict[str, Tally], shown: list[_Shown]
) -> None:
    """Replay the live predictions in time order with ACI windows: a prediction's window comes
    from the arrivals before its moment; an arrival feeds its predictions' residuals. Counted
    by true horizon (`tallies`, the table's rows) and by predicted horizon (`by_predicted`:
    what the platform knew when it showed the window)."""
    states: dict[str, conformal.BucketState] = {}
    arrivals = sorted(shown, key=lambda p: (p.truth_at, p.moment))
    offered: dict[int, tuple[float, float] | None] = {}  # by id(prediction)
    fed = 0
    for prediction in sorted(shown, key=lambda p: (p.moment, p.truth_at)):
        while fed < len(arrivals) and arrivals[fed].truth_at <= prediction.moment:
            done = arrivals[fed]
            bucket = window_bucket((done.eta - done.moment).total_seconds() / 60)
            state = states.setdefault(bucket, conformal.BucketState())
            state.observe(
                (done.truth_at - done.eta).total_seconds(), offered=offered.pop(id(done), None)
            )
            fed += 1
        predicted = window_bucket((prediction.eta - prediction.moment).total_seconds() / 60)
        state = states.get(predicted)
        offsets = state.window() if state is not None else None
        offered[id(prediction)] = offsets
        low, high = prediction.low, prediction.high
        if offsets is not None:
            low = max(prediction.moment, prediction.eta + timedelta(seconds=offsets[0]))
            high = max(prediction.moment, prediction.eta + timedelta(seconds=offsets[1]))
        horizon = (prediction.truth_at - prediction.moment).total_seconds() / 60
        ahead = (prediction.eta - prediction.moment).total_seconds() / 60
        for tally in (tallies[bucket_of(horizon)], by_predicted[bucket_of(ahead)]):
            tally.errors_min.append((prediction.eta - prediction.truth_at).total_seconds() / 60)
            tally.covered.append(low <= prediction.truth_at <= high)
            tally.widths_min.append((high - low).total_seconds() / 60)


def _replay(route: Route, world: World, day: date, known: _Known) -> _Replay | None:
    """The route driven by the hidden world; None when it has nothing to predict."""
    stops = [
        s
        for s in route.stops.order_by("sequence").prefetch_related("shipments")
        if s.location is not None
    ]
    if not stops or route.planned_start is None:
        return None
    plans = [stop_plan(s) for s in stops]
    truth = route_timeline(
        world,
        route_id=route.pk,
        code=route.code,
        day=f"eval:{day}",
        start=route.planned_start,
        start_point=route.hub.location,
        hub=route.hub.location,
        stops=plans,
        zone=known.zone,
        interval_s=30,
        driver=route.driver.external_id if route.driver_id else "",
        # How the route's carrier really works, as in the history (world.PROFILES).
        carrier=route.carrier.code,
    )
    points = [s.location for s in stops]
    return _Replay(
        route=route,
        stops=stops,
        plans=plans,
        points=points,
        samples=truth.samples,
        arrival={t.stop_id: t.arrival for t in truth.stops},
        departure={t.stop_id: t.departure for t in truth.stops},
        road=travel_matrix(points),
        straight=straight_line_matrix(points),
        dwells=[dwell_s(s) for s in stops],
        dwells_live=[dwell_s(s, known.dwell_factor) for s in stops],
        parcels=[plan.parcels for plan in plans],
        driver=route.driver.external_id if route.driver_id else "",
    )


def _predictions(replay: _Replay, moment: datetime, ahead: list[int], known: _Known) -> dict:
    """{method: [(eta, low, high) per stop ahead]} as each method would have said at `moment`,
    from where the vehicle truly was."""
    stops, points, arrival = replay.stops, replay.points, replay.arrival
    here = _position_at(replay.samples, moment, replay.route.hub.location)
    first = ahead[0]
    # The vehicle's own leg as the live engine computes it (it joins the street ahead).
    to_first = vehicle_leg(here, points[first])
    to_first_road = to_first.seconds
    to_first_line = straight_line_matrix([here, points[first]]).durations_s[0][1]
    legs_road = [to_first_road] + [replay.road.durations_s[i - 1][i] for i in ahead[1:]]
    legs_line = [to_first_line] + [replay.straight.durations_s[i - 1][i] for i in ahead[1:]]
    dwells_ahead = [replay.dwells[i] for i in ahead]
    departs = departs_live = moment
    standing = None
    if first > 0 and replay.departure[stops[first - 1].pk] > moment:
        # Standing at the previous stop: what is left of its dwell comes first.
        elapsed = (moment - arrival[stops[first - 1].pk]).total_seconds()
        standing = (first - 1, elapsed)
        departs += timedelta(seconds=remaining_dwell_s(replay.dwells[first - 1], elapsed))
        departs_live += timedelta(seconds=remaining_dwell_s(replay.dwells_live[first - 1], elapsed))
    by_hour = live_windows(
        legs_road,
        [replay.dwells_live[i] for i in ahead],
        departs_live,
        moment,
        travel_by_hour=known.travel_by_hour,
        zone=known.zone,
        calibration=known.calibration,
    )[0]
    predictions = {
        "straight_line": estimate(legs_line, dwells_ahead, departs, travel_factor=1.0),
        "free_flow": estimate(legs_road, dwells_ahead, departs, travel_factor=1.0),
        "network_prior": estimate(legs_road, dwells_ahead, departs),
        "by_hour": by_hour,
        "live": by_hour,
        "oracle": oracle_arrivals(
            known.world,
            _oracle_route(replay, here, ahead, to_first.length_m, legs_road),
            moment,
            standing=_oracle_standing(replay, standing),
            zone=known.zone,
            rng=random.Random(f"oracle:{replay.route.pk}:{moment.isoformat()}"),  # noqa: S311
        ),
    }
    if known.times is not None:
        predictions["live"] = _learned_live(replay, here, ahead, moment, standing, known, legs_road)
    if known.learned is not None:
        predictions["learned"] = known.learned.windows(
            legs_road,
            [{"point": points[i], "parcels": replay.plans[i].parcels} for i in ahead],
            departs,
            known.zone,
        )
    return predictions


def _learned_live(replay, here, ahead, moment, standing, known, legs_road):
    """The live ETAs with the learned tables: from here through the stops ahead; standing at
    the previous stop, its learned dwell still to come first."""
    indexes = ahead if standing is None else [standing[0], *ahead]
    windows = learned_etas(
        known.times,
        points=[here, *(replay.points[i] for i in indexes)],
        hub=replay.route.hub.location,
        crew=(replay.route.carrier_id, replay.route.driver_id),
        addresses=[replay.stops[i].address for i in indexes],
        parcels=[replay.parcels[i] for i in indexes],
        legs_s=legs_road,
        now=moment,
        zone=known.zone,
        standing_s=None if standing is None else standing[1],
    )
    return calibrated_windows(windows, moment, known.live_calibration)


def _oracle_route(replay, here, ahead, to_first_m, legs_road) -> OracleRoute:
    road = replay.road
    return OracleRoute(
        points=[here, *(replay.points[i] for i in ahead)],
        legs_s=legs_road,
        lengths_m=[to_first_m] + [road.distances_m[i - 1][i] for i in ahead[1:]],
        addresses=[replay.stops[i].address for i in ahead],
        parcels=[replay.parcels[i] for i in ahead],
        driver=replay.driver,
        carrier=replay.route.carrier.code,
    )


def _oracle_standing(replay, standing):
    """(address, parcels, location, arrival, seconds spent) of the stop the vehicle stands at."""
    if standing is None:
        return None
    index, elapsed = standing
    stop = replay.stops[index]
    return OracleVisit(
        address=stop.address,
        parcels=replay.parcels[index],
        location=replay.points[index],
        arrival=replay.arrival[stop.pk],
        elapsed_s=elapsed,
    )


def _count(
    tallies: dict,
    replay: _Replay,
    moment: datetime,
    ahead: list[int],
    predictions,
    shown: list[_Shown],
):
    """Each prediction's error against the true arrival, in the bucket of its horizon; the
    live ones are kept in `shown` instead (their windows are the conformal ones, replayed in
    time order afterwards: `_count_conformal`)."""
    for position, index in enumerate(ahead):
        stop = replay.stops[index]
        truth_at = replay.arrival[stop.pk]
        horizon = (truth_at - moment).total_seconds() / 60
        bucket = bucket_of(horizon)
        if stop.planned_arrival is not None:
            tallies["static_plan"][bucket].errors_min.append(
                (stop.planned_arrival - truth_at).total_seconds() / 60
            )
        for method, windows in predictions.items():
            eta, low, high = windows[position]
            if method == "live":
                shown.append(_Shown(moment, truth_at, eta, low, high))
                continue
            tally = tallies[method][bucket]
            tally.errors_min.append((eta - truth_at).total_seconds() / 60)
            if method in WITH_WINDOWS:
                tally.covered.append(low <= truth_at <= high)
                tally.widths_min.append((high - low).total_seconds() / 60)


def markdown_table(results: dict) -> str:
    lines = [
        "| horizon (min) | method | n | MAE (min) | bias (min) | P90 abs (min) | within ±5 "
        "| within ±10 | P10–P90 coverage | median width (min) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = [
        m for method in METHODS for m in ([method, BY_PREDICTED] if method == "live" else [method])
    ]
    for low, _high in BUCKETS:
        bucket = bucket_of(low)
        for method in rows:
            row = results[method][bucket]
            if not row.get("n"):
                continue
            coverage = row.get("p10_p90_coverage_pct")
            lines.append(
                f"| {bucket} | {method} | {row['n']} | {row['mae_min']} | {row['bias_min']} "
                f"| {row['p90_abs_min']} "
                f"| {row['within_5_min_pct']} % | {row['within_10_min_pct']} % "
                f"| {'—' if coverage is None else f'{coverage} %'} "
                f"| {row.get('median_width_min', '—')} |"
            )
    return "\n".join(lines)
