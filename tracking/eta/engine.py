"""ETAs for the remaining stops of a route: the network estimator (the cold-start model).

From where the vehicle is (its device's last good position when fresh, else its last finished
stop, else the hub), through the remaining stops in sequence: road-network travel time for each
leg plus the predicted dwell at each stop before it. Each arrival gets a P10–P90 window whose
width grows with the time still to go (uncertainty accumulates along the route).

This is the estimator a new organization gets before any history exists (priors below); the
learned corrections of issue 5 plug in by replacing `leg_factor` and `dwell_s`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from carriers.models import Device
from tracking.models import DevicePosition, Route, RouteStatus, Stop, StopStatus
from tracking.roads.routing import leg_durations

METHOD = "network_prior"
OPEN = (StopStatus.PENDING, StopStatus.ARRIVED)
# Priors (cold start): city traffic runs ~15 % slower than free flow; relative spread of
# travel time and dwell (log-normal sigmas), and the minimum half-width of a window.
PRIOR_TRAVEL_FACTOR = 1.15
PRIOR_TRAVEL_SIGMA = 0.18
PRIOR_DWELL_SIGMA = 0.35
MIN_HALF_WIDTH_S = 120
ETA_REFRESH_S = 300  # recompute at least this often, pings or not
Z90 = 1.2816  # P90 of the standard normal


@dataclass(frozen=True)
class StopEta:
    stop_id: int
    eta: datetime
    earliest: datetime
    latest: datetime


def _position(route: Route, now: datetime):
    """(point, at) where the vehicle is: a fresh device fix, else the last finished stop."""
    devices = Device.objects.filter(revoked_at__isnull=True)
    device_ids = list(
        devices.filter(driver_id=route.driver_id).values_list("id", flat=True)
        if route.driver_id
        else []
    ) or list(devices.filter(vehicle_id=route.vehicle_id).values_list("id", flat=True))
    fresh = now - timedelta(seconds=settings.ETA_POSITION_MAX_AGE_S)
    position = (
        DevicePosition.objects.filter(device_id__in=device_ids, fix_time__gte=fresh)
        .order_by("-fix_time")
        .first()
    )
    if position is not None:
        return position.location
    last = (
        route.stops.exclude(status__in=OPEN)
        .exclude(actual_departure__isnull=True)
        .order_by("-actual_departure")
        .first()
    )
    return last.location if last is not None and last.location else route.hub.location


def dwell_s(stop: Stop) -> float:
    """Prior dwell: the planned service time (which already counts parcels), else 3 min."""
    return float(stop.planned_service_s or 180)


def estimate(
    legs_s: list[float],
    dwells_s: list[float],
    now: datetime,
    *,
    travel_factor: float = PRIOR_TRAVEL_FACTOR,
    travel_sigma: float = PRIOR_TRAVEL_SIGMA,
    dwell_sigma: float = PRIOR_DWELL_SIGMA,
) -> list[tuple[datetime, datetime, datetime]]:
    """(eta, earliest, latest) per stop, from the free-flow travel time of each leg (from here to
    the first stop, then stop to stop) and the dwell at each stop. Pure: the engine and the
    evaluation both use it."""
    t = variance = 0.0
    out = []
    for leg, dwell in zip(legs_s, dwells_s, strict=True):
        travel = leg * travel_factor
        t += travel
        variance += (travel * travel_sigma) ** 2
        half = max(MIN_HALF_WIDTH_S, Z90 * math.sqrt(variance))
        eta = now + timedelta(seconds=t)
        # Late is likelier than early: the late side of the window is wider.
        out.append(
            (eta, max(now, eta - timedelta(seconds=half)), eta + timedelta(seconds=half * 1.3))
        )
        t += dwell
        variance += (dwell * dwell_sigma) ** 2
    return out


def route_etas(route: Route, *, now: datetime | None = None) -> list[StopEta]:
    now = now or timezone.now()
    stops = [s for s in route.stops.order_by("sequence") if s.status in OPEN and s.location]
    if not stops:
        return []
    here = _position(route, now)
    durations = leg_durations([here, *(s.location for s in stops)])
    legs = [
        0.0 if stop.status == StopStatus.ARRIVED else durations[index]
        for index, stop in enumerate(stops)
    ]
    # A planned route leaves at its planned start, not before.
    departs = now
    if route.status == RouteStatus.PLANNED and route.planned_start and route.planned_start > now:
        departs = route.planned_start
    windows = estimate(legs, [dwell_s(stop) for stop in stops], departs)
    return [
        StopEta(stop_id=stop.pk, eta=eta, earliest=earliest, latest=latest)
        for stop, (eta, earliest, latest) in zip(stops, windows, strict=True)
    ]
