"""Measuring ETAs against what really happened, side by side with baselines.

For each held-out day, the simulator's hidden world (tracking/simulation/world.py) drives every
route of the day from its hub through all its stops: that is the truth (arrival per stop, true
position over time). Every `step_s` seconds of each route, each method predicts the arrival of
every stop not reached yet, from where the vehicle truly is at that moment; the error is the
prediction minus the true arrival, bucketed by horizon (how long before the arrival it was made).

Methods:
- `static_plan`: the planned arrival, never updated;
- `straight_line`: straight lines × 1.3 at 25 km/h plus the planned service times;
- `free_flow`: road-network free-flow times plus the planned service times, no correction;
- `network_prior`: the cold-start estimator (tracking/eta/engine.py: road network ×1.15,
  planned service, P10–P90 window);
- `learned`: quantile models trained on the days before the held-out ones
  (tracking/eta/learning.py), never on the held-out days.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.gis.geos import Point

from tracking.eta.engine import dwell_s, estimate
from tracking.models import Route
from tracking.roads.routing import straight_line_matrix, travel_matrix
from tracking.simulation.timeline import route_timeline, stop_plan
from tracking.simulation.world import World

BUCKETS = [(0, 15), (15, 30), (30, 60), (60, 120), (120, None)]
METHODS = [
    "static_plan",
    "straight_line",
    "free_flow",
    "network_prior",
    "calibrated_prior",
    "learned",
]
WITH_WINDOWS = {"network_prior", "calibrated_prior", "learned"}


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
            "p90_abs_min": round(absolute[min(n - 1, int(0.9 * n))], 2),
            "within_5_min_pct": round(100 * sum(a <= 5 for a in absolute) / n, 1),
            "within_10_min_pct": round(100 * sum(a <= 10 for a in absolute) / n, 1),
        }
        if self.covered:
            row["p10_p90_coverage_pct"] = round(100 * sum(self.covered) / len(self.covered), 1)
            row["median_width_min"] = round(statistics.median(self.widths_min), 1)
        return row


def bucket_of(horizon_min: float) -> str:
    for low, high in BUCKETS:
        if high is None or horizon_min < high:
            return f"{low}-{high}" if high else f"{low}+"
    return "?"


def _position_at(samples, moment: datetime, fallback: Point) -> Point:
    last = None
    for sample in samples:
        if sample.t > moment:
            break
        last = sample
    return fallback if last is None else Point(last.lon, last.lat, srid=4326)


def evaluate_days(
    organization,
    days: list[date],
    world: World,
    *,
    step_s: int = 300,
    learned=None,
    calibration: dict | None = None,
    residuals: list | None = None,
) -> dict:
    """{method: {bucket: summary}} over the days' routes (needs the organization in scope).
    `learned`: a LearnedEstimator trained on days before the held-out ones (time split).
    `calibration`: {predicted-horizon bucket: (P10, P90) of the prior's error in minutes},
    learned on earlier days (`calibrate`). `residuals`: a list that collects
    (predicted-horizon bucket, prior error in minutes) for `calibrate`."""
    zone = ZoneInfo(organization.time_zone)
    tallies = {m: {bucket_of(lo): Tally() for lo, _hi in BUCKETS} for m in METHODS}
    for day in days:
        routes = Route.objects.filter(date=day).select_related("hub").order_by("code")
        for route in routes:
            stops = [
                s
                for s in route.stops.order_by("sequence").prefetch_related("shipments")
                if s.location is not None
            ]
            if not stops or route.planned_start is None:
                continue
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
                zone=zone,
                interval_s=30,
            )
            arrival = {t.stop_id: t.arrival for t in truth.stops}
            points = [s.location for s in stops]
            road = travel_matrix(points)
            straight = straight_line_matrix(points)
            dwells = [dwell_s(s) for s in stops]
            moment = route.planned_start
            while moment < max(arrival.values()):
                ahead = [i for i, s in enumerate(stops) if arrival[s.pk] > moment]
                here = _position_at(truth.samples, moment, route.hub.location)
                first = ahead[0]
                to_first_road = travel_matrix([here, points[first]]).durations_s[0][1]
                to_first_line = straight_line_matrix([here, points[first]]).durations_s[0][1]
                legs_road = [to_first_road] + [road.durations_s[i - 1][i] for i in ahead[1:]]
                legs_line = [to_first_line] + [straight.durations_s[i - 1][i] for i in ahead[1:]]
                dwells_ahead = [dwells[i] for i in ahead]
                predictions = {
                    "straight_line": estimate(legs_line, dwells_ahead, moment, travel_factor=1.0),
                    "free_flow": estimate(legs_road, dwells_ahead, moment, travel_factor=1.0),
                    "network_prior": estimate(legs_road, dwells_ahead, moment),
                }
                if calibration is not None:
                    predictions["calibrated_prior"] = [
                        _calibrated(eta, moment, calibration)
                        for eta, _low, _high in predictions["network_prior"]
                    ]
                if learned is not None:
                    predictions["learned"] = learned.windows(
                        legs_road,
                        [{"point": points[i], "parcels": plans[i].parcels} for i in ahead],
                        moment,
                        zone,
                    )
                for position, index in enumerate(ahead):
                    stop = stops[index]
                    truth_at = arrival[stop.pk]
                    horizon = (truth_at - moment).total_seconds() / 60
                    bucket = bucket_of(horizon)
                    if stop.planned_arrival is not None:
                        tallies["static_plan"][bucket].errors_min.append(
                            (stop.planned_arrival - truth_at).total_seconds() / 60
                        )
                    if residuals is not None:
                        eta = predictions["network_prior"][position][0]
                        residuals.append(
                            (
                                bucket_of((eta - moment).total_seconds() / 60),
                                (truth_at - eta).total_seconds() / 60,
                            )
                        )
                    for method, windows in predictions.items():
                        eta, low, high = windows[position]
                        tally = tallies[method][bucket]
                        tally.errors_min.append((eta - truth_at).total_seconds() / 60)
                        if method in WITH_WINDOWS:
                            tally.covered.append(low <= truth_at <= high)
                            tally.widths_min.append((high - low).total_seconds() / 60)
                moment += timedelta(seconds=step_s)
    return {m: {b: t.summary() for b, t in by_bucket.items()} for m, by_bucket in tallies.items()}


def markdown_table(results: dict) -> str:
    lines = [
        "| horizon (min) | method | n | MAE (min) | P90 abs (min) | within ±5 | within ±10 "
        "| P10–P90 coverage | median width (min) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for low, _high in BUCKETS:
        bucket = bucket_of(low)
        for method in METHODS:
            row = results[method][bucket]
            if not row.get("n"):
                continue
            coverage = row.get("p10_p90_coverage_pct")
            lines.append(
                f"| {bucket} | {method} | {row['n']} | {row['mae_min']} | {row['p90_abs_min']} "
                f"| {row['within_5_min_pct']} % | {row['within_10_min_pct']} % "
                f"| {'—' if coverage is None else f'{coverage} %'} "
                f"| {row.get('median_width_min', '—')} |"
            )
    return "\n".join(lines)


def _calibrated(eta: datetime, moment: datetime, calibration: dict):
    low_min, high_min = calibration[bucket_of((eta - moment).total_seconds() / 60)]
    low = max(moment, eta + timedelta(minutes=low_min))
    return eta, low, max(low, eta + timedelta(minutes=high_min))


def calibrate(organization, days: list[date], world: World, *, step_s: int = 300) -> dict:
    """Per predicted-horizon bucket, the P10 and P90 of how far the truth lands from the prior's
    ETA on these (earlier) days: empirical windows, calibrated by construction on past data."""
    residuals: list = []
    evaluate_days(organization, days, world, step_s=step_s, residuals=residuals)
    calibration = {}
    for low, _high in BUCKETS:
        bucket = bucket_of(low)
        errors = sorted(e for b, e in residuals if b == bucket) or [0.0]
        n = len(errors)
        calibration[bucket] = (errors[int(0.1 * (n - 1))], errors[int(0.9 * (n - 1))])
    return calibration
