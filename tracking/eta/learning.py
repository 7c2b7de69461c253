"""Learning ETAs from history: travel-time corrections over the network's free-flow times and
dwell times, as quantile regressors (scikit-learn gradient boosting, quantile loss: P10, P50,
P90), per organization, versioned.

Training data (finished routes of past days): each leg between consecutive visits (from the
previous departure, or the route's start, to the next arrival) against the road network's
free-flow time for that leg; each stop's dwell (arrival to departure). Features: local hour,
weekday, free-flow seconds (legs) or parcels (dwells), outcome, and a ~1 km grid cell. Targets
are logarithms (ratios multiply, dwell is skewed).

What the live ETAs use from here is simpler and sturdier than the regressors (see docs/ETA.md):
the travel factor by local hour (`travel_by_hour`), stored on the model.
"""

from __future__ import annotations

import hashlib
import math
import pickle  # noqa: S403 - our own fitted models, written and read by us only
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from tracking.eta.factors import (
    DWELL_GROUPS,
    TRAVEL_GROUPS,
    LearnedTimes,
    fit_trimmed,
    heading_way,
    leg_keys,
    visit_keys,
)
from tracking.eta.learned import forget_learned, next_version
from tracking.geo import point_distance_m
from tracking.models import ATTEMPTED_STOP_STATUSES, EtaModel, Route, RouteStatus, Stop, StopStatus
from tracking.roads.routing import travel_matrix

QUANTILES = (0.1, 0.5, 0.9)
MODEL_FORMAT = 6  # part of the fingerprint: a new way of fitting retrains on the same data
MIN_ROWS = 30  # below: keep the priors
MIN_LEGS_PER_HOUR = 20  # an hour with fewer legs keeps the prior factor
ROUGH_TRAVEL_FACTOR, ROUGH_DWELL_S = 1.2, 180.0  # where a route's hours fall, roughly
TRIM_SHARE = 0.05  # the slowest legs of an hour left out of its factor (stalls, crashes)


def completed_routes(since: date, until: date):
    """(route, visits) of every completed route with since <= date < until: the stops it
    finished (delivered or failed), in the order they were reached, with both times known.
    What learning and calibration both read history as."""
    routes = (
        Route.objects.filter(
            date__gte=since, date__lt=until, status=RouteStatus.COMPLETED, started_at__isnull=False
        )
        .select_related("hub")
        .order_by("date", "code")
    )
    for route in routes:
        visits = [
            s
            for s in route.stops.filter(
                status__in=ATTEMPTED_STOP_STATUSES,
                actual_arrival__isnull=False,
                actual_departure__isnull=False,
            )
            .annotate(parcels=Coalesce(Sum("shipments__parcel_count"), 1))
            .order_by("actual_arrival")
            if s.location is not None
        ]
        if visits:
            yield route, visits


def _cell(point) -> float:
    return round(point.y, 2) * 1000 + round(point.x, 2)  # ~1 km grid, one number


def leg_features(hour: float, weekday: int, free_flow_s: float, point) -> list[float]:
    return [hour, math.log1p(free_flow_s)]


def dwell_features(hour: float, weekday: int, parcels: int, failed: bool, point) -> list[float]:
    return [hour, weekday, parcels, float(failed), _cell(point)]


@dataclass(frozen=True)
class HistoryLeg:
    """One leg of a finished route: from the previous departure (or the route's start) to the
    next arrival, with what was known of it."""

    local_start: datetime
    free_flow_s: float
    actual_s: float
    origin: object
    destination: object
    hub: object
    crew: tuple  # (carrier id, driver id)


@dataclass(frozen=True)
class HistoryVisit:
    local_arrival: datetime
    dwell_s: float
    address: str
    parcels: int
    failed: bool
    location: object
    crew: tuple  # (carrier id, driver id)


def history(organization, *, since: date, until: date):
    """(legs, visits) of the finished routes with since <= date < until, as both learners read
    them (legs and visits of zero or negative length left out)."""
    zone = ZoneInfo(organization.time_zone)
    legs, visits_out = [], []
    for route, visits in completed_routes(since, until):
        hub = route.hub.location
        points = [hub, *(s.location for s in visits)]
        free = travel_matrix(points).durations_s
        previous_departure = route.started_at
        for index, stop in enumerate(visits):
            transit = (stop.actual_arrival - previous_departure).total_seconds()
            if transit > 0:
                legs.append(
                    HistoryLeg(
                        local_start=previous_departure.astimezone(zone),
                        free_flow_s=max(free[index][index + 1], 1),
                        actual_s=transit,
                        origin=points[index],
                        destination=points[index + 1],
                        hub=hub,
                        crew=(route.carrier_id, route.driver_id),
                    )
                )
            dwell = (stop.actual_departure - stop.actual_arrival).total_seconds()
            if dwell > 0:
                visits_out.append(
                    HistoryVisit(
                        local_arrival=stop.actual_arrival.astimezone(zone),
                        dwell_s=dwell,
                        address=stop.address,
                        parcels=stop.parcels,
                        failed=stop.status == StopStatus.FAILED,
                        location=stop.location,
                        crew=(route.carrier_id, route.driver_id),
                    )
                )
            previous_departure = stop.actual_departure
    return legs, visits_out


def training_rows(legs: list[HistoryLeg], visits: list[HistoryVisit]):
    """(legs X, legs y, dwells X, dwells y) of the gradient-boosted models."""
    legs_x = [
        leg_features(
            leg.local_start.hour + leg.local_start.minute / 60,
            leg.local_start.weekday(),
            leg.free_flow_s,
            leg.destination,
        )
        for leg in legs
    ]
    legs_y = [math.log(leg.actual_s / leg.free_flow_s) for leg in legs]
    dwells_x = [
        dwell_features(
            v.local_arrival.hour + v.local_arrival.minute / 60,
            v.local_arrival.weekday(),
            v.parcels,
            v.failed,
            v.location,
        )
        for v in visits
    ]
    dwells_y = [math.log(v.dwell_s) for v in visits]
    return legs_x, legs_y, dwells_x, dwells_y


def fit_times(legs: list[HistoryLeg], visits: list[HistoryVisit], version: int = 0):
    """The shrunk travel and dwell tables of tracking/eta/factors.py; None when history is too
    thin."""
    if len(legs) < MIN_ROWS or len(visits) < MIN_ROWS:
        return None
    leg_rows = [
        leg_keys(
            hour=leg.local_start.hour,
            weekday=leg.local_start.weekday(),
            free_flow_s=leg.free_flow_s,
            crow_m=point_distance_m(leg.origin, leg.destination),
            way=heading_way(leg.origin, leg.destination, leg.hub),
            crew=leg.crew,
        )
        for leg in legs
    ]
    visit_rows = [
        visit_keys(
            hour=v.local_arrival.hour,
            address=v.address,
            parcels=v.parcels,
            point=v.location,
            crew=v.crew,
        )
        for v in visits
    ]
    return LearnedTimes(
        version,
        fit_trimmed(
            leg_rows, [math.log(leg.actual_s / leg.free_flow_s) for leg in legs], TRAVEL_GROUPS
        ),
        fit_trimmed(visit_rows, [math.log(v.dwell_s) for v in visits], DWELL_GROUPS),
    )


def travel_by_hour(legs_x, legs_y) -> dict[str, float]:
    """{"local hour": actual / free-flow travel time} from `training_rows`' legs, for the hours
    with at least MIN_LEGS_PER_HOUR legs: the ratio of the sums (a mean of ratios weighted by
    free-flow time: a route's travel is a sum of legs) over all but the slowest TRIM_SHARE of
    the hour's legs. Breakdowns and crashes are rare and unforeseeable: left in, a 20-minute
    stall on a 3-minute leg would lengthen every ETA of that hour; they belong to the late side
    of the calibrated window, not to the point estimate."""
    by_hour: dict[int, list[tuple[float, float]]] = {}
    for features, log_ratio in zip(legs_x, legs_y, strict=True):
        by_hour.setdefault(int(features[0]), []).append(
            (math.exp(log_ratio), math.expm1(features[1]))
        )
    factors = {}
    for hour, legs in sorted(by_hour.items()):
        if len(legs) < MIN_LEGS_PER_HOUR:
            continue
        legs.sort()
        kept = legs[: max(1, round(len(legs) * (1 - TRIM_SHARE)))]
        free = sum(f for _ratio, f in kept)
        if free > 0:
            factors[str(hour)] = round(sum(r * f for r, f in kept) / free, 4)
    return factors


def dwell_factor(organization, *, since: date, until: date) -> float | None:
    """Actual / planned dwell over the visits of finished routes with since <= date < until (the
    ratio of the sums, without the longest TRIM_SHARE of visits); None below MIN_ROWS visits."""
    visits = sorted(
        (
            (departure - arrival).total_seconds() / (planned or 180),
            float(planned or 180),
        )
        for arrival, departure, planned in Stop.objects.filter(
            route__date__gte=since,
            route__date__lt=until,
            route__status=RouteStatus.COMPLETED,
            status__in=ATTEMPTED_STOP_STATUSES,
            actual_arrival__isnull=False,
            actual_departure__isnull=False,
        ).values_list("actual_arrival", "actual_departure", "planned_service_s")
    )
    if len(visits) < MIN_ROWS:
        return None
    kept = visits[: max(1, round(len(visits) * (1 - TRIM_SHARE)))]
    return round(sum(r * p for r, p in kept) / sum(p for _r, p in kept), 4)


def _fit(x, y) -> dict:
    """Quantiles of the log target (the spread), and the mean of the target itself: sums of
    skewed times concentrate around the sum of *means*, so a route's ETA adds means (adding
    medians would run ever earlier along the route)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    fitted = {
        q: HistGradientBoostingRegressor(
            loss="quantile", quantile=q, max_iter=150, learning_rate=0.08, random_state=0
        ).fit(x, y)
        for q in QUANTILES
    }
    fitted["mean"] = HistGradientBoostingRegressor(
        loss="squared_error", max_iter=150, learning_rate=0.08, random_state=0
    ).fit(x, [math.exp(v) for v in y])
    return fitted


def train(organization, *, until: date | None = None, days: int = 28) -> EtaModel | None:
    """Fit on the `days` before `until` (default today). Idempotent: the same training data
    gives back the model already trained on it. None when history is too thin (priors stay)."""
    until = until or timezone.localdate()
    since = until - timedelta(days=days)
    legs, visits = history(organization, since=since, until=until)
    legs_x, legs_y, dwells_x, dwells_y = training_rows(legs, visits)
    if len(legs_y) < MIN_ROWS or len(dwells_y) < MIN_ROWS:
        return None
    fingerprint = hashlib.sha256(
        repr((MODEL_FORMAT, legs_x, legs_y, dwells_x, dwells_y)).encode()
    ).hexdigest()
    existing = EtaModel.objects.filter(organization=organization, fingerprint=fingerprint).first()
    if existing is not None:
        return existing
    blob = pickle.dumps({"legs": _fit(legs_x, legs_y), "dwells": _fit(dwells_x, dwells_y)})
    times = fit_times(legs, visits)
    forget_learned(organization.pk)
    return EtaModel.objects.create(
        organization=organization,
        version=next_version(EtaModel, organization),
        factors=times.as_json() if times is not None else None,
        trained_at=timezone.now(),
        trained_from=since,
        trained_until=until,
        legs=len(legs_y),
        dwells=len(dwells_y),
        fingerprint=fingerprint,
        blob=blob,
        travel_by_hour=travel_by_hour(legs_x, legs_y),
        dwell_factor=dwell_factor(organization, since=since, until=until),
    )


@dataclass
class LearnedEstimator:
    """Predictions of one trained model."""

    version: int
    regressors: dict

    @classmethod
    def of(cls, model: EtaModel) -> LearnedEstimator:
        return cls(model.version, pickle.loads(bytes(model.blob)))  # noqa: S301 - our own blob

    def windows(self, legs_free_s: list[float], stops: list[dict], now: datetime, zone):
        """(eta, earliest, latest) per stop. `stops`: dicts with point, parcels. Legs and dwells
        are predicted at the hour they will roughly happen (a first pass at ROUGH_TRAVEL_FACTOR
        and ROUGH_DWELL_S: one model call per quantile for the whole route, not per leg);
        their spreads add in quadrature."""
        t, leg_rows, dwell_rows = 0.0, [], []
        for free, stop in zip(legs_free_s, stops, strict=True):
            local = (now + timedelta(seconds=t)).astimezone(zone)
            hour, weekday = local.hour + local.minute / 60, local.weekday()
            leg_rows.append(leg_features(hour, weekday, max(free, 1), stop["point"]))
            dwell_rows.append(dwell_features(hour, weekday, stop["parcels"], False, stop["point"]))
            t += free * ROUGH_TRAVEL_FACTOR + ROUGH_DWELL_S
        legs = {k: m.predict(leg_rows) for k, m in self.regressors["legs"].items()}
        dwells = {k: m.predict(dwell_rows) for k, m in self.regressors["dwells"].items()}
        t = var_low = var_high = 0.0
        out = []
        for i, free in enumerate(legs_free_s):
            if free > 0:
                q = {k: math.exp(legs[k][i]) * free for k in QUANTILES}
                t += q[0.5]
                var_low += ((q[0.5] - q[0.1]) / 1.2816) ** 2
                var_high += ((q[0.9] - q[0.5]) / 1.2816) ** 2
            eta = now + timedelta(seconds=t)
            low = max(now, eta - timedelta(seconds=max(60.0, 1.2816 * math.sqrt(var_low))))
            high = eta + timedelta(seconds=max(60.0, 1.2816 * math.sqrt(var_high)))
            out.append((eta, low, high))
            d = {k: math.exp(dwells[k][i]) for k in QUANTILES}
            t += dwells["mean"][i]
            var_low += ((d[0.5] - d[0.1]) / 1.2816) ** 2
            var_high += ((d[0.9] - d[0.5]) / 1.2816) ** 2
        return out
