"""ETAs for the remaining stops of a route: the network estimator (the cold-start model).

From where the vehicle is (its device's last good position when fresh, else its last finished
stop, else the hub), through the remaining stops in sequence: road-network travel time for each
leg plus the predicted dwell at each stop before it. Each arrival gets a P10–P90 window whose
width grows with the time still to go (uncertainty accumulates along the route).

With history, two things learned per organization replace the priors (tracking/eta/learning.py,
tracking/eta/calibration.py): the travel factor of the local hour each leg is driven in, and
windows calibrated on the errors the live estimator made on recent days, by predicted horizon.
A new organization (no history) gets the priors below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from tracking.eta.factors import LearnedTimes, heading_way
from tracking.eta.learned import learned_state
from tracking.eta.legs import XY
from tracking.geo import distance_m
from tracking.models import OPEN_STOP_STATUSES, DevicePosition, Route, RouteStatus, Stop, StopStatus
from tracking.roads.routing import leg_durations

METHOD = "network_prior"
METHOD_BY_HOUR = "network_by_hour"
METHOD_LEARNED = "learned_tables"
OPEN = OPEN_STOP_STATUSES
# Priors (cold start): city traffic runs ~15 % slower than free flow; relative spread of
# travel time and dwell (log-normal sigmas), and the minimum half-width of a window.
PRIOR_TRAVEL_FACTOR = 1.15
PRIOR_TRAVEL_SIGMA = 0.18
PRIOR_DWELL_SIGMA = 0.35
MIN_HALF_WIDTH_S = 120
MIN_REMAINING_DWELL_S = 30
ETA_REFRESH_S = 300  # recompute at least this often, pings or not
Z90 = 1.2816  # P90 of the standard normal


@dataclass(frozen=True)
class StopEta:
    stop_id: int
    eta: datetime
    earliest: datetime
    latest: datetime
    method: str = METHOD


# Buckets of horizon (minutes ahead): the evaluation's table rows and the calibration's keys.
HORIZON_BUCKETS = [(0, 15), (15, 30), (30, 60), (60, 120), (120, None)]


def horizon_bucket(minutes: float, buckets=HORIZON_BUCKETS) -> str:
    for low, high in buckets:
        if high is None or minutes < high:
            return f"{low}-{high}" if high else f"{low}+"
    return "?"


# Windows are calibrated on finer buckets of predicted horizon than the report's rows: the
# errors 2 h ahead and 4 h ahead differ by more than their spread, and one window sized for
# "120+" was too narrow for the longest horizons (docs/ETA.md).
WINDOW_BUCKETS = [
    (0, 10),
    (10, 20),
    (20, 30),
    (30, 45),
    (45, 60),
    (60, 90),
    (90, 120),
    (120, 160),
    (160, 200),
    (200, 260),
    (260, None),
]


def window_bucket(minutes: float) -> str:
    """The calibration's key of a window predicted `minutes` ahead."""
    return horizon_bucket(minutes, WINDOW_BUCKETS)


def travel_factor_at(moment: datetime, travel_by_hour: dict, zone) -> float:
    """The learned factor at this moment, interpolated between the middles of the local hours
    (traffic builds up and eases off gradually); hours without enough history use the prior."""
    local = moment.astimezone(zone)
    position = local.hour + local.minute / 60 + local.second / 3600 - 0.5
    low = math.floor(position)
    share = position - low

    def factor(hour: int) -> float:
        return float(travel_by_hour.get(str(hour % 24), PRIOR_TRAVEL_FACTOR))

    return factor(low) * (1 - share) + factor(low + 1) * share


def _position(route: Route, now: datetime):
    """Where the vehicle is: the freshest fix of the driver's devices (else of the vehicle's),
    else the last finished stop, else the hub. One query when the vehicle reports (the hot
    path of every ping-triggered recompute)."""
    fresh = now - timedelta(seconds=settings.ETA_POSITION_MAX_AGE_S)
    whose = Q(pk__in=[])
    if route.driver_id:
        whose |= Q(device__driver_id=route.driver_id)
    if route.vehicle_id:
        whose |= Q(device__vehicle_id=route.vehicle_id)
    position = (
        DevicePosition.objects.filter(whose, device__revoked_at__isnull=True, fix_time__gte=fresh)
        # The driver's own phone first: the vehicle's tracker only when the driver has none.
        .order_by(
            Case(When(device__driver_id=route.driver_id, then=0), default=1)
            if route.driver_id
            else Value(1),
            "-fix_time",
        )
        .values_list("location", flat=True)
        .first()
    )
    if position is not None:
        return position
    last = (
        route.stops.exclude(status__in=OPEN)
        .exclude(actual_departure__isnull=True)
        .order_by("-actual_departure")
        .values_list("location", flat=True)
        .first()
    )
    return last or route.hub.location


def dwell_s(stop: Stop, factor: float | None = None) -> float:
    """The planned service time (which already counts parcels), else 3 min; times the learned
    actual / planned dwell of the organization when there is one."""
    return float(stop.planned_service_s or 180) * (factor or 1.0)


def estimate(
    legs_s: list[float],
    dwells_s: list[float],
    now: datetime,
    *,
    travel_factor: float = PRIOR_TRAVEL_FACTOR,
    travel_sigma: float = PRIOR_TRAVEL_SIGMA,
    dwell_sigma: float = PRIOR_DWELL_SIGMA,
    travel_by_hour: dict | None = None,
    zone=None,
    leg_factor: Callable[[int, datetime, float], float] | None = None,
    dwell_at: Callable[[int, datetime], float] | None = None,
) -> list[tuple[datetime, datetime, datetime]]:
    """(eta, earliest, latest) per stop, from the free-flow travel time of each leg (from here to
    the first stop, then stop to stop) and the dwell at each stop. With `travel_by_hour`
    ({"local hour": factor}, and the organization's `zone`), each leg is multiplied by the factor
    of the moment it starts instead of `travel_factor`; with `leg_factor(index, start, free-flow
    seconds)`, by what that says (the learned tables, `LearnedRoute`), and `dwell_at(index,
    arrival)` replaces `dwells_s`. Pure: the engine, the calibration and the evaluation all use
    it."""
    t = variance = 0.0
    out = []
    for index, (leg, planned_dwell) in enumerate(zip(legs_s, dwells_s, strict=True)):
        if leg_factor is not None:
            factor = leg_factor(index, now + timedelta(seconds=t), leg)
        elif travel_by_hour:
            factor = travel_factor_at(now + timedelta(seconds=t), travel_by_hour, zone)
        else:
            factor = travel_factor
        travel = leg * factor
        t += travel
        variance += (travel * travel_sigma) ** 2
        half = max(MIN_HALF_WIDTH_S, Z90 * math.sqrt(variance))
        eta = now + timedelta(seconds=t)
        # Late is likelier than early: the late side of the window is wider.
        out.append(
            (eta, max(now, eta - timedelta(seconds=half)), eta + timedelta(seconds=half * 1.3))
        )
        dwell = dwell_at(index, eta) if dwell_at is not None else planned_dwell
        t += dwell
        variance += (dwell * dwell_sigma) ** 2
    return out


def remaining_dwell_s(planned_s: float, elapsed_s: float) -> float:
    """Dwell still to come at a stop the vehicle stands at: the planned dwell minus what has
    passed, but never nothing (the driver is still there)."""
    return max(planned_s - elapsed_s, MIN_REMAINING_DWELL_S)


def calibrated_windows(
    windows: list[tuple[datetime, datetime, datetime]], now: datetime, calibration: dict | None
) -> list[tuple[datetime, datetime, datetime]]:
    """Replace each window by eta + the calibrated P10/P90 offsets of its predicted horizon
    ({bucket: (p10_s, p90_s)}); buckets without a calibration keep the prior window. Never
    earlier than now, never narrower than the minimum half-width on either side."""
    if not calibration:
        return windows
    out = []
    for eta, earliest, latest in windows:
        ahead = (eta - now).total_seconds() / 60
        # Calibrations stored before the finer buckets are keyed by the report's buckets.
        offsets = calibration.get(window_bucket(ahead)) or calibration.get(horizon_bucket(ahead))
        if offsets is not None:
            low_s, high_s = offsets
            earliest = eta + timedelta(seconds=min(low_s, -MIN_HALF_WIDTH_S))
            latest = eta + timedelta(seconds=max(high_s, MIN_HALF_WIDTH_S))
        out.append((eta, max(now, earliest), max(now, latest)))
    return out


def live_windows(
    legs_s: list[float],
    dwells_s: list[float],
    departs: datetime,
    now: datetime,
    *,
    travel_by_hour: dict | None,
    zone,
    calibration: dict | None,
    learned: LearnedRoute | None = None,
) -> tuple[list[tuple[datetime, datetime, datetime]], str]:
    """What the live ETAs show: the learned tables (`learned`, when trained) or else hourly
    factors (when learned), and calibrated windows (when calibrated), else the priors. Returns
    the windows and the method's name."""
    if learned is not None:
        leg_factor, dwell_at = learned.callables(zone)
        windows = estimate(
            legs_s, dwells_s, departs, leg_factor=leg_factor, dwell_at=dwell_at, zone=zone
        )
        method = METHOD_LEARNED
    else:
        windows = estimate(legs_s, dwells_s, departs, travel_by_hour=travel_by_hour, zone=zone)
        method = METHOD_BY_HOUR if travel_by_hour else METHOD
    return calibrated_windows(windows, now, calibration), method


def learned_etas(
    times: LearnedTimes,
    *,
    points: list,
    hub,
    crew: tuple,
    addresses: list[str],
    parcels: list[int],
    legs_s: list[float],
    now: datetime,
    zone,
    standing_s: float | None = None,
) -> list[tuple[datetime, datetime, datetime]]:
    """(eta, earliest, latest) with the learned tables from `points[0]` through the stops of
    `points[1:]` (their addresses and parcels), over the free-flow `legs_s` between them. With
    `standing_s`, the vehicle stands at the first stop, reached that many seconds ago: its
    learned dwell still to come delays the rest, and its own window is left out (`legs_s` then
    starts from it). What the evaluation and the calibration's replay both need."""
    route = LearnedRoute(
        times=times,
        points=points,
        hub=hub,
        crew=crew,
        addresses=addresses,
        parcels=parcels,
        standing=None if standing_s is None else (0, standing_s),
    )
    leg_factor, dwell_at = route.callables(zone)
    legs = legs_s if standing_s is None else [0.0, *legs_s]
    windows = estimate(legs, [0.0] * len(legs), now, leg_factor=leg_factor, dwell_at=dwell_at)
    return windows if standing_s is None else windows[1:]


@dataclass(frozen=True)
class LearnedRoute:
    """What the learned tables need of the stops ahead of a vehicle: the points from where it is
    through them (`points[0]` is here), the route's hub and crew (carrier, driver), each stop's
    address and parcels, and the dwell still to come at a stop it stands at (`standing`: index,
    seconds already spent there)."""

    times: LearnedTimes
    points: list
    hub: object
    crew: tuple  # (carrier id, driver id)
    addresses: list[str]
    parcels: list[int]
    standing: tuple[int, float] | None = None

    def callables(self, zone):
        # Plain floats once: reading a GEOS point's x and y per leg cost more than the tables.
        points = [XY(p.x, p.y) for p in self.points]
        hub = XY(self.hub.x, self.hub.y) if self.hub is not None else None
        times = self.times

        def leg_factor(index: int, start: datetime, free_flow_s: float) -> float:
            local = start.astimezone(zone)
            origin, destination = points[index], points[index + 1]
            return times.travel_factor(
                local_hour=local.hour + local.minute / 60,
                weekday=local.weekday(),
                free_flow_s=free_flow_s,
                crow_m=distance_m(origin.y, origin.x, destination.y, destination.x),
                way=heading_way(origin, destination, hub),
                crew=self.crew,
            )

        def dwell_at(index: int, arrival: datetime) -> float:
            local = arrival.astimezone(zone)
            dwell = times.dwell_s(
                address=self.addresses[index],
                parcels=self.parcels[index],
                location=points[index + 1],
                local_hour=local.hour + local.minute / 60,
                crew=self.crew,
            )
            if self.standing is not None and self.standing[0] == index:
                return remaining_dwell_s(dwell, self.standing[1])
            return dwell

        return leg_factor, dwell_at


def route_etas(route: Route, *, now: datetime | None = None) -> list[StopEta]:
    now = now or timezone.now()
    # Only what the estimate reads: this runs on every ping-triggered recompute.
    stops = list(
        with_parcels(
            route.stops.filter(status__in=OPEN, location__isnull=False)
            .order_by("sequence")
            .only(*STOP_FIELDS)
        )
    )
    if not stops:
        return []
    here = _position(route, now)
    legs = leg_durations([here, *(s.location for s in stops)], from_vehicle=True)
    return etas_from(route, stops, legs, now, here)


# The stop fields the estimate reads (route_etas and the bulk recompute load only these).
STOP_FIELDS = (
    "id",
    "organization",
    "route",
    "sequence",
    "status",
    "location",
    "planned_service_s",
    "actual_arrival",
    "address",
)


def with_parcels(stops):
    """The stops' parcels (what the learned dwell reads), one aggregate in the same query."""
    return stops.annotate(parcels=Coalesce(Sum("shipments__parcel_count"), 1))


def etas_from(
    route: Route, stops: list, durations: list[float], now: datetime, here=None
) -> list[StopEta]:
    """The route's ETAs from its open stops (in sequence; anything with the Stop fields the
    estimate reads, and `parcels`) and the travel time of each leg from where the vehicle is
    (`here`, anything with x and y; the hub when not given) through them:
    the part of a recompute that reads nothing of the route's own from the database (one
    recompute and the bulk one in tracking/eta/bulk.py share it, so both give the same
    windows)."""
    legs = [
        0.0 if stop.status == StopStatus.ARRIVED else durations[index]
        for index, stop in enumerate(stops)
    ]
    travel_by_hour, dwell_factor, calibration, zone, times = learned_state(route.organization_id)
    dwells = [
        remaining_dwell_s(dwell_s(stop, dwell_factor), (now - stop.actual_arrival).total_seconds())
        if stop.status == StopStatus.ARRIVED and stop.actual_arrival
        else dwell_s(stop, dwell_factor)
        for stop in stops
    ]
    # A planned route leaves at its planned start, not before.
    departs = now
    if route.status == RouteStatus.PLANNED and route.planned_start and route.planned_start > now:
        departs = route.planned_start
    learned = None
    if times is not None:
        standing = next(
            (
                (index, (now - stop.actual_arrival).total_seconds())
                for index, stop in enumerate(stops)
                if stop.status == StopStatus.ARRIVED and stop.actual_arrival
            ),
            None,
        )
        learned = LearnedRoute(
            times=times,
            points=[here or route.hub.location, *(stop.location for stop in stops)],
            hub=route.hub.location,
            crew=(route.carrier_id, route.driver_id),
            addresses=[stop.address for stop in stops],
            parcels=[stop.parcels for stop in stops],
            standing=standing,
        )
    windows, method = live_windows(
        legs,
        dwells,
        departs,
        now,
        travel_by_hour=travel_by_hour,
        zone=zone,
        calibration=calibration,
        learned=learned,
    )
    return [
        StopEta(stop_id=stop.pk, eta=eta, earliest=earliest, latest=latest, method=method)
        for stop, (eta, earliest, latest) in zip(stops, windows, strict=True)
    ]
