"""Learning ETAs from history: travel-time corrections over the network's free-flow times and
dwell times, as quantile regressors (scikit-learn gradient boosting, quantile loss: P10, P50,
P90), per organization, versioned.

Training data (finished routes of past days): each leg between consecutive visits (from the
previous departure, or the route's start, to the next arrival) against the road network's
free-flow time for that leg; each stop's dwell (arrival to departure). Features: local hour,
weekday, free-flow seconds (legs) or parcels (dwells), outcome, and a ~1 km grid cell. Targets
are logarithms (ratios multiply, dwell is skewed).
"""

from __future__ import annotations

import hashlib
import math
import pickle  # noqa: S403 - our own fitted models, written and read by us only
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from tracking.models import EtaModel, Route, RouteStatus, StopStatus
from tracking.roads.routing import travel_matrix

QUANTILES = (0.1, 0.5, 0.9)
MODEL_FORMAT = 2  # part of the fingerprint: a new way of fitting retrains on the same data
MIN_ROWS = 30  # below: keep the priors


def _cell(point) -> float:
    return round(point.y, 2) * 1000 + round(point.x, 2)  # ~1 km grid, one number


def leg_features(hour: float, weekday: int, free_flow_s: float, point) -> list[float]:
    return [hour, math.log1p(free_flow_s)]


def dwell_features(hour: float, weekday: int, parcels: int, failed: bool, point) -> list[float]:
    return [hour, weekday, parcels, float(failed), _cell(point)]


def training_rows(organization, *, since: date, until: date):
    """(legs X, legs y, dwells X, dwells y) from finished routes with since <= date < until."""
    zone = ZoneInfo(organization.time_zone)
    legs_x, legs_y, dwells_x, dwells_y = [], [], [], []
    routes = Route.objects.filter(
        date__gte=since, date__lt=until, status=RouteStatus.COMPLETED, started_at__isnull=False
    ).select_related("hub")
    for route in routes:
        visits = [
            s
            for s in route.stops.filter(
                status__in=(StopStatus.COMPLETED, StopStatus.FAILED),
                actual_arrival__isnull=False,
                actual_departure__isnull=False,
            ).order_by("actual_arrival")
            if s.location is not None
        ]
        if not visits:
            continue
        points = [route.hub.location, *(s.location for s in visits)]
        free = travel_matrix(points).durations_s
        previous_departure = route.started_at
        for index, stop in enumerate(visits):
            transit = (stop.actual_arrival - previous_departure).total_seconds()
            free_flow = max(free[index][index + 1], 1)
            local = previous_departure.astimezone(zone)
            if transit > 0:
                legs_x.append(
                    leg_features(
                        local.hour + local.minute / 60, local.weekday(), free_flow, stop.location
                    )
                )
                legs_y.append(math.log(transit / free_flow))
            dwell = (stop.actual_departure - stop.actual_arrival).total_seconds()
            arrival = stop.actual_arrival.astimezone(zone)
            if dwell > 0:
                dwells_x.append(
                    dwell_features(
                        arrival.hour + arrival.minute / 60,
                        arrival.weekday(),
                        stop.shipments.count() or 1,
                        stop.status == StopStatus.FAILED,
                        stop.location,
                    )
                )
                dwells_y.append(math.log(dwell))
            previous_departure = stop.actual_departure
    return legs_x, legs_y, dwells_x, dwells_y


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
    legs_x, legs_y, dwells_x, dwells_y = training_rows(organization, since=since, until=until)
    if len(legs_y) < MIN_ROWS or len(dwells_y) < MIN_ROWS:
        return None
    fingerprint = hashlib.sha256(
        repr((MODEL_FORMAT, legs_x, legs_y, dwells_x, dwells_y)).encode()
    ).hexdigest()
    existing = EtaModel.objects.filter(fingerprint=fingerprint).first()
    if existing is not None:
        return existing
    blob = pickle.dumps({"legs": _fit(legs_x, legs_y), "dwells": _fit(dwells_x, dwells_y)})
    latest = EtaModel.objects.order_by("-version").values_list("version", flat=True).first()
    return EtaModel.objects.create(
        organization=organization,
        version=(latest or 0) + 1,
        trained_at=timezone.now(),
        trained_from=since,
        trained_until=until,
        legs=len(legs_y),
        dwells=len(dwells_y),
        fingerprint=fingerprint,
        blob=blob,
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
        are predicted at the moment they will happen; their spreads add in quadrature."""
        t = var_low = var_high = 0.0
        out = []
        for free, stop in zip(legs_free_s, stops, strict=True):
            local = (now + timedelta(seconds=t)).astimezone(zone)
            hour, weekday = local.hour + local.minute / 60, local.weekday()
            if free > 0:
                x = [leg_features(hour, weekday, max(free, 1), stop["point"])]
                q = {
                    k: math.exp(m.predict(x)[0]) * free for k, m in self.regressors["legs"].items()
                }
                t += q[0.5]
                var_low += ((q[0.5] - q[0.1]) / 1.2816) ** 2
                var_high += ((q[0.9] - q[0.5]) / 1.2816) ** 2
            eta = now + timedelta(seconds=t)
            low = max(now, eta - timedelta(seconds=max(60.0, 1.2816 * math.sqrt(var_low))))
            high = eta + timedelta(seconds=max(60.0, 1.2816 * math.sqrt(var_high)))
            out.append((eta, low, high))
            x = [dwell_features(hour, weekday, stop["parcels"], False, stop["point"])]
            models = self.regressors["dwells"]
            d = {k: math.exp(models[k].predict(x)[0]) for k in QUANTILES}
            t += models["mean"].predict(x)[0]
            var_low += ((d[0.5] - d[0.1]) / 1.2816) ** 2
            var_high += ((d[0.9] - d[0.5]) / 1.2816) ** 2
        return out
