"""The rich world's effects (`WorldConfig(kind="rich")`): the structure real last-mile data has.

Sizes and their sources are in docs/SIMULATION.md ("The rich world"). Two kinds of draws:
- the CITY's (from `city_seed`): each driver's pace and home area, each address's building,
  each area's own dwell; a held-out evaluation with another noise seed meets the same ones;
- the DAY's (from `seed`): rain, road closures (and, in world.py, every per-leg and per-stop
  noise), which nobody can know in advance except the weather (public: the oracle may read it).

`World` (world.py) calls these; it is the only reader. `Leg` and `Visit` are what one leg and
one stop look like to the world: the truth builds them while driving a route
(timeline.route_timeline) and the oracle asks `World.expected_leg_s/expected_dwell_s` about them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from tracking.geo import distance_m
from tracking.roads.classes import road_class
from tracking.simulation import city

# Congestion multipliers on free-flow travel time, by local hour (weekday profile): the base
# shape of both worlds.
RUSH = {7: 1.35, 8: 1.6, 9: 1.35, 13: 1.3, 14: 1.25, 17: 1.4, 18: 1.65, 19: 1.35}


def rush(local: datetime) -> float:
    """RUSH interpolated by the minute."""
    hour = local.hour + local.minute / 60
    low, high = RUSH.get(int(hour), 1.0), RUSH.get(int(hour) + 1, 1.0)
    return low + (high - low) * (hour - int(hour))


@dataclass(frozen=True)
class Leg:
    local_start: datetime  # tz-aware, local time of the organization
    free_flow_s: float
    length_m: float
    origin: tuple[float, float]  # (lon, lat)
    destination: tuple[float, float]
    driver: str = ""
    carrier: str = ""


@dataclass(frozen=True)
class Visit:
    address: str
    parcels: int
    location: tuple[float, float]  # (lon, lat)
    local_arrival: datetime
    driver: str = ""
    carrier: str = ""


# -- sizes (docs/SIMULATION.md "The rich world") ---------------------------------------------
DRIVER_TRAVEL_SIGMA = 0.10  # log-normal spread of drivers' travel pace
DRIVER_DWELL_SIGMA = 0.20  # log-normal spread of drivers' time at the door
HOME_DWELL = 0.90  # a driver at the door in their home area
HOME_TRAVEL = 0.95  # a driver driving into their home area (knows the shortcuts)
AREA_DWELL_SIGMA = 0.10  # each area's own dwell (lifts, gates, how people answer)
# A house and an apartment block take the world's `dwell_house_s` (90 s) and
# `dwell_apartment_s` (240 s: stairs, gates, concierge); a shop this much less than a house.
SHOP_VS_HOUSE_S = -30.0
# × not_home_probability: a concierge takes an apartment's parcel, a shop always has someone;
# scaled so that over the city's addresses the rate stays the knob's (the carriers' SLA story).
NOT_HOME = {"house": 1.15, "apartment": 0.9, "shop": 0.35}
PARKING_S = 60.0  # looking for a place to stop, within city.CENTRE_RADIUS_M of a centre
LUNCH = (time(13, 0), time(14, 30), 1.15)  # people answer the door slower
# Congestion by road class and direction: the share of RUSH's excess over free flow a leg
# meets. Arterials carry the commute (the peak direction in full, the other half of it);
# local streets a smaller share, plus the school run.
ARTERIAL_PEAK, ARTERIAL_COUNTER, LOCAL_SHARE = 1.0, 0.5, 0.4
SCHOOL_RUN = ((time(7, 30), time(8, 30)), (time(13, 0), time(14, 0)), (time(16, 0), time(17, 0)))
SCHOOL_RUN_LOCAL = 1.2
MORNING_PEAK_ENDS, EVENING_PEAK_STARTS = time(12, 0), time(15, 0)
RAIN_SEASON = {6: 0.20, 7: 0.20, 8: 0.20}  # month: share of rainy days (else RAIN_ELSEWHEN)
RAIN_ELSEWHEN = 0.03
RAIN_TRAVEL, RAIN_DWELL = 1.25, 1.10
CLOSURE_HOURS = (time(8, 0), time(18, 0))  # a closure starts in this span, lasts CLOSURE_S
CLOSURE_S = 3600.0
CLOSURE_REACH_M = 400.0  # a leg whose straight segment passes this near it detours
CLOSURE_DETOUR_S = (600.0, 1200.0)
# Where closures happen: the demo area (lon, lat) box around both cities.
CLOSURE_BOX = ((-71.37, -29.99), (-71.21, -29.86))


@dataclass(frozen=True)
class Closure:
    lon: float
    lat: float
    start: datetime  # local
    end: datetime
    detour_s: float


class RichEffects:
    """The rich world's parameters, from the world's two seeds and its config."""

    def __init__(self, config):
        self.config = config

    def city_rng(self, *about):
        return city.seeded(self.config.city_seed, *about)

    def day_rng(self, *about):
        return city.seeded(self.config.seed, *about)

    # -- the city -------------------------------------------------------------------------
    def driver_travel(self, driver: str) -> float:
        if not driver:
            return 1.0
        return math.exp(self.city_rng("driver-travel", driver).gauss(0, DRIVER_TRAVEL_SIGMA))

    def driver_dwell(self, driver: str) -> float:
        if not driver:
            return 1.0
        return math.exp(self.city_rng("driver-dwell", driver).gauss(0, DRIVER_DWELL_SIGMA))

    def home_area(self, driver: str) -> int | None:
        """The area (index in city.AREAS) a driver knows best, drawn by area weight."""
        if not driver:
            return None
        weights = [area[3] for area in city.AREAS]
        return self.city_rng("home-area", driver).choices(range(len(city.AREAS)), weights)[0]

    def area_dwell(self, area: int) -> float:
        return math.exp(self.city_rng("area-dwell", area).gauss(0, AREA_DWELL_SIGMA))

    def building(self, address: str) -> str:
        """The true building of an address: the pool's when it is one of the city's
        customers, else a draw by address (35 % apartments, 10 % shops)."""
        known = city.pool_by_text(self.config.city_seed).get(address)
        if known is not None:
            return known.building
        pick = self.city_rng("building", address).random()
        return "apartment" if pick < 0.35 else "shop" if pick < 0.45 else "house"

    # -- the day --------------------------------------------------------------------------
    def raining(self, day: date) -> bool:
        if self.config.rain is not None:
            return self.config.rain
        share = RAIN_SEASON.get(day.month, RAIN_ELSEWHEN)
        return self.day_rng("rain", day.isoformat()).random() < share

    def closures(self, day: date, zone) -> list[Closure]:
        """The day's road closures (Poisson, `closures_per_day` on average)."""
        mean = self.config.closures_per_day
        if mean <= 0:
            return []
        rng = self.day_rng("closures", day.isoformat())
        count, threshold, product = 0, math.exp(-mean), rng.random()
        while product > threshold:  # Knuth's Poisson draw
            count += 1
            product *= rng.random()
        (west, south), (east, north) = CLOSURE_BOX
        first = datetime.combine(day, CLOSURE_HOURS[0], tzinfo=zone)
        span_s = _seconds(CLOSURE_HOURS[1]) - _seconds(CLOSURE_HOURS[0])
        found = []
        for _ in range(count):
            start = first + timedelta(seconds=rng.uniform(0, span_s))
            found.append(
                Closure(
                    lon=rng.uniform(west, east),
                    lat=rng.uniform(south, north),
                    start=start,
                    end=start + timedelta(seconds=CLOSURE_S),
                    detour_s=rng.uniform(*CLOSURE_DETOUR_S),
                )
            )
        return found

    def closure_s(self, leg: Leg) -> float:
        """Seconds of detour around the closures on at the leg's start near its segment."""
        local = leg.local_start
        return sum(
            closure.detour_s
            for closure in self.closures(local.date(), local.tzinfo)
            if closure.start <= local < closure.end
            and _segment_m(leg.origin, leg.destination, (closure.lon, closure.lat))
            <= CLOSURE_REACH_M
        )

    def expected_closure_s(self, leg: Leg) -> float:
        """E[closure_s] over the day's draws: closures × P(on at the start) × P(near the
        segment: the segment's CLOSURE_REACH_M buffer over the box's area) × mean detour."""
        mean = self.config.closures_per_day
        if mean <= 0:
            return 0.0
        now = _seconds(leg.local_start.timetz().replace(tzinfo=None))
        begin, end = _seconds(CLOSURE_HOURS[0]), _seconds(CLOSURE_HOURS[1])
        on = max(0.0, min(now, end) - max(now - CLOSURE_S, begin)) / (end - begin)
        (west, south), (east, north) = CLOSURE_BOX
        lat = (south + north) / 2
        box_m2 = distance_m(lat, west, lat, east) * distance_m(south, west, north, west)
        length = distance_m(leg.origin[1], leg.origin[0], leg.destination[1], leg.destination[0])
        near = min(1.0, (2 * CLOSURE_REACH_M * length + math.pi * CLOSURE_REACH_M**2) / box_m2)
        return mean * on * near * sum(CLOSURE_DETOUR_S) / 2

    # -- multipliers ----------------------------------------------------------------------
    def congestion(self, leg: Leg) -> float:
        """RUSH's shape, by road class and direction (the peak direction: inbound in the
        morning, outbound in the evening; both at midday), the school run on local streets."""
        local = leg.local_start
        excess = rush(local) - 1.0
        if road_class(leg.length_m, leg.free_flow_s) == "arterial":
            clock = local.timetz().replace(tzinfo=None)
            inbound = _inbound(leg.origin, leg.destination)
            if clock < MORNING_PEAK_ENDS:
                share = ARTERIAL_PEAK if inbound else ARTERIAL_COUNTER
            elif clock >= EVENING_PEAK_STARTS:
                share = ARTERIAL_COUNTER if inbound else ARTERIAL_PEAK
            else:
                share = ARTERIAL_PEAK
            return 1.0 + excess * share
        school = SCHOOL_RUN_LOCAL if _school_run(local) else 1.0
        return (1.0 + excess * LOCAL_SHARE) * school

    def travel(self, leg: Leg) -> float:
        """Everything structural and day-level about a leg's travel time (no per-leg noise)."""
        factor = self.congestion(leg) * self.driver_travel(leg.driver)
        if self.home_area(leg.driver) == city.area_of(*leg.destination):
            factor *= HOME_TRAVEL
        if self.raining(leg.local_start.date()):
            factor *= RAIN_TRAVEL
        return factor

    def dwell(self, visit: Visit) -> tuple[float, float]:
        """(seconds at the door before the driver's and the day's multipliers, the multiplier)
        of a delivered visit, without per-visit noise."""
        seconds = self.base_s(visit.address, visit.parcels) + _parking_s(visit.location)
        area = city.area_of(*visit.location)
        factor = self.area_dwell(area) * self.driver_dwell(visit.driver)
        if self.home_area(visit.driver) == area:
            factor *= HOME_DWELL
        clock = visit.local_arrival.timetz().replace(tzinfo=None)
        if LUNCH[0] <= clock < LUNCH[1]:
            factor *= LUNCH[2]
        if self.raining(visit.local_arrival.date()):
            factor *= RAIN_DWELL
        return seconds, factor

    def base_s(self, address: str, parcels: int) -> float:
        """Seconds at the door for the building and the parcels."""
        config = self.config
        building = self.building(address)
        if building == "apartment":
            base = config.dwell_apartment_s
        else:
            base = config.dwell_house_s + (SHOP_VS_HOUSE_S if building == "shop" else 0.0)
        return base + config.dwell_per_parcel_s * parcels

    def not_home(self, address: str) -> float:
        """Multiplier on the not-home probability at this address."""
        return NOT_HOME[self.building(address)]


def _parking_s(location: tuple[float, float]) -> float:
    return PARKING_S if city.in_centre(*location) else 0.0


def _seconds(clock: time) -> float:
    return clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6


def _school_run(local: datetime) -> bool:
    clock = local.timetz().replace(tzinfo=None)
    return any(begin <= clock < end for begin, end in SCHOOL_RUN)


def _inbound(origin: tuple[float, float], destination: tuple[float, float]) -> bool:
    """The destination is nearer the city centre nearest it than the origin is."""
    centre, to_destination = city.nearest_centre(*destination)
    return to_destination < distance_m(origin[1], origin[0], centre[1], centre[0])


def _segment_m(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> float:
    """Metres from point p to the straight segment a-b (local equirectangular)."""
    kx = 111_320 * math.cos(math.radians(p[1]))
    ax, ay = (a[0] - p[0]) * kx, (a[1] - p[1]) * 111_320
    bx, by = (b[0] - p[0]) * kx, (b[1] - p[1]) * 111_320
    dx, dy = bx - ax, by - ay
    span = dx * dx + dy * dy
    share = 0.0 if span == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / span))
    return math.hypot(ax + share * dx, ay + share * dy)
