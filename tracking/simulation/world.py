"""The simulator's hidden world: what really happens on the road and at the door.

Nothing else in the platform reads this. The ETA engine and the dispatchers only see what the
vehicles report through the ingest endpoints, as with a real fleet. Every draw is deterministic
for a given seed and the name of what it is about (a route, a leg, a stop), so two runs with the
same seed and start produce the same ground truth, whatever order things are computed in.

Knobs (`WorldConfig`, see docs/SIMULATION.md): time-of-day congestion, per-leg noise, random
incidents, breakdowns (and whether the driver reports them from the app), GPS noise and bad
fixes, phones going offline, customers not at home, dwell time by kind of address and parcel
count. On top of the knobs, each carrier has a profile (`PROFILES`, by carrier code): how its
drivers really work (speed, dwell, late starts, failed attempts and why, skipped scans, proofs
of delivery, GPS gaps, what its ETAs are worth, how customers rate it), so the SLA scorecards
of the demo's four carriers differ as real ones would.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

from tracking.simulation.city import seeded
from tracking.simulation.world_rich import (
    RUSH,
    Leg,
    RichEffects,
    Visit,
    rush,
)

__all__ = ["RUSH", "CarrierProfile", "Leg", "Visit", "World", "WorldConfig"]

# Means of the uniform draws below, for the expectations (`expected_leg_s`, `expected_dwell_s`).
INCIDENT_SLOWDOWN = (1.5, 3.0)
BREAKDOWN_S = (600.0, 1800.0)
WRONG_TURN_OFF_S = (300.0, 720.0)
WRONG_TURN_RAMP_S = 90.0  # drifting off the line and back: a wrong turn costs off + 2 ramps
LONG_DWELL = (4.0, 6.0)
FAILED_ATTEMPT_S = 60.0


def _mean(span: tuple[float, float]) -> float:
    return (span[0] + span[1]) / 2


@dataclass(frozen=True)
class WorldConfig:
    # "simple": time-of-day congestion and the knobs below; "rich": also drivers, buildings,
    # road classes, rain, closures (world_rich.py, docs/SIMULATION.md "The rich world").
    kind: str = "simple"
    seed: int = 42  # the day's noise
    city_seed: int = 42  # the city: drivers, buildings, areas (the same across noise seeds)
    leg_noise_sigma: float = 0.15  # log-normal spread of a leg's travel time
    incident_probability: float = 0.04  # per leg: a crash, road works (slows 1.5-3x)
    breakdown_probability: float = 0.02  # per leg: the vehicle stalls 10-30 min
    # A broken-down driver tells dispatch through the app (POST /api/v1/incidents/), 1-4 min
    # after stopping (looking at the engine first); some call by phone or just wait instead.
    breakdown_report_probability: float = 0.8
    gps_noise_m: float = 6.0  # typical error of a good fix
    bad_fix_probability: float = 0.02  # a fix hundreds of metres off, with poor accuracy
    offline_probability: float = 0.05  # per leg: the phone loses signal for part of it
    not_home_probability: float = 0.08  # the customer is out: attempt failed
    dwell_house_s: float = 90.0
    dwell_apartment_s: float = 240.0
    dwell_per_parcel_s: float = 25.0
    dwell_noise_sigma: float = 0.3  # log-normal spread of a visit's time at the door
    closures_per_day: float = 1.5  # rich: roads closed for an hour (Poisson mean)
    rain: bool | None = None  # rich: None draws each day's weather from the season
    # What the exception rules must notice (docs/SIMULATION.md "Injected conditions").
    wrong_turn_probability: float = 0.03  # per leg: the driver leaves the planned line a while
    late_start_probability: float = 0.08  # per route: it leaves the hub 25-60 min late
    outage_probability: float = 0.08  # per route: the phone is silent 12-25 min mid-route
    low_battery_probability: float = 0.08  # per route: the phone starts low and drains fast
    long_dwell_probability: float = 0.03  # per delivered stop: 4-6x the usual time at the door
    # Carriers behave as their profile says (PROFILES); False: every carrier is DEFAULT_PROFILE.
    carrier_profiles: bool = True


@dataclass(frozen=True)
class CarrierProfile:
    """How one carrier's drivers really work. Multipliers apply to the world's knobs (so the
    knobs still move every carrier); the rest are probabilities of the carrier's own habits."""

    speed: float = 1.0  # travel time multiplier (>1: slower)
    noise: float = 1.0  # multiplier on the spread of a leg's travel time
    dwell: float = 1.0  # time at the door multiplier
    late_start: float = 1.0  # multiplier on late_start_probability
    late_start_scale: float = 1.0  # multiplier on how late a late start is
    failures: float = 1.0  # multiplier on not_home_probability (all failed attempts)
    # Why an attempt fails (FailureReason values, weights); not_home the usual one.
    reasons: tuple[tuple[str, float], ...] = (
        ("not_home", 0.75),
        ("access_denied", 0.1),
        ("address_not_found", 0.08),
        ("refused", 0.07),
    )
    gaps: float = 1.0  # multiplier on offline_probability and outage_probability
    resequence: float = 0.0  # per pair of planned stops: the driver swaps them (own order)
    skip_out_for_delivery_scan: float = 0.0  # per parcel: the driver never scans it out
    pod_photo_missing: float = 0.0  # per proof of delivery
    pod_signature_missing: float = 0.0
    pod_far: float = 0.0  # per proof: captured 200-700 m from the door (outside the geofence)
    eta_error: float = 1.0  # multiplier on the error of the ETAs shown to customers
    # Stars 5, 4, 3, 2, 1 (weights) of an on-time delivery; a late one loses a star.
    stars: tuple[float, float, float, float, float] = (70, 20, 6, 2, 2)


DEFAULT_PROFILE = CarrierProfile()


def scaled(probability: float, multiplier: float) -> float:
    """A knob's probability as a carrier with `multiplier` times the risk meets it: about
    `probability * multiplier` when small, and a knob of 0 or 1 stays 0 or 1 (what the tests
    and the evaluations set it to)."""
    return 1.0 - (1.0 - probability) ** multiplier


# The demo's carriers (tracking/simulation/demo.py CARRIERS); docs/SIMULATION.md has the table
# and which SLA targets each one passes or breaches.
PROFILES: dict[str, CarrierProfile] = {
    # In-house fleet: good at everything.
    "cqx": CarrierProfile(
        late_start=0.4,
        failures=0.7,
        gaps=0.5,
        skip_out_for_delivery_scan=0.003,
        pod_photo_missing=0.003,
        pod_signature_missing=0.003,
        pod_far=0.003,
        eta_error=0.8,
        stars=(80, 15, 3, 1, 1),
    ),
    # 3PL: on time, but its drivers skip the out-for-delivery scan on ~10 % of parcels and
    # forget the door photo now and then.
    "andes3pl": CarrierProfile(
        late_start=0.6,
        failures=0.9,
        reasons=(("not_home", 0.65), ("access_denied", 0.15), ("refused", 0.1), ("damaged", 0.1)),
        gaps=0.8,
        skip_out_for_delivery_scan=0.10,
        pod_photo_missing=0.04,
        pod_signature_missing=0.01,
        pod_far=0.005,
        eta_error=1.0,
        stars=(78, 17, 3, 1, 1),
    ),
    # Regional courier: slower, late starts, old phones losing GPS: it runs late.
    "elqui": CarrierProfile(
        speed=1.5,
        dwell=1.4,
        late_start=5.0,
        late_start_scale=1.5,
        failures=1.1,
        reasons=(
            ("not_home", 0.55),
            ("address_not_found", 0.2),
            ("out_of_time", 0.15),
            ("vehicle", 0.1),
        ),
        gaps=7.0,
        resequence=0.05,
        skip_out_for_delivery_scan=0.005,
        pod_photo_missing=0.004,
        pod_signature_missing=0.004,
        pod_far=0.004,
        eta_error=2.2,
        stars=(50, 28, 12, 6, 4),
    ),
    # Gig drivers: quick at the door but uneven on the road and often late to start, more
    # nobody-home failures, proofs taken from the kerb.
    "rapidos": CarrierProfile(
        noise=2.5,
        dwell=0.9,
        late_start=4.0,
        late_start_scale=1.6,
        failures=3.0,
        reasons=(
            ("not_home", 0.6),
            ("refused", 0.12),
            ("address_not_found", 0.15),
            ("access_denied", 0.13),
        ),
        gaps=1.5,
        resequence=0.2,
        skip_out_for_delivery_scan=0.03,
        pod_photo_missing=0.02,
        pod_signature_missing=0.03,
        pod_far=0.09,
        eta_error=1.5,
        stars=(45, 25, 15, 8, 7),
    ),
}


class World:
    def __init__(self, config: WorldConfig):
        if config.kind not in ("simple", "rich"):
            raise ValueError(f"unknown world kind {config.kind!r}: simple or rich")
        self.config = config
        self.rich = RichEffects(config) if config.kind == "rich" else None

    def profile(self, carrier: str | None) -> CarrierProfile:
        """The carrier's profile (DEFAULT_PROFILE for an unknown carrier or without profiles)."""
        if not self.config.carrier_profiles or not carrier:
            return DEFAULT_PROFILE
        return PROFILES.get(carrier, DEFAULT_PROFILE)

    def rng(self, *about) -> random.Random:
        """A generator for one thing of the world, independent of every other draw."""
        return seeded(self.config.seed, *about)

    def city_rng(self, *about) -> random.Random:
        """A generator for one thing of the city (the same whatever the noise `seed`)."""
        return seeded(self.config.city_seed, *about)

    def congestion(self, local: datetime) -> float:
        return rush(local)

    def leg_factor(
        self,
        route: str,
        leg: int,
        local_start: datetime,
        profile: CarrierProfile = DEFAULT_PROFILE,
        *,
        about: Leg | None = None,
    ) -> tuple[float, str]:
        """How much longer than free flow this leg really takes, and why. The rich world
        needs `about` (the leg: its road class, direction, driver)."""
        rng = self.rng("leg", route, leg)
        sigma = self.config.leg_noise_sigma * profile.noise
        factor = self._travel(local_start, profile, about) * math.exp(rng.gauss(0, sigma))
        reason = "traffic"
        if rng.random() < self.config.incident_probability:
            factor *= rng.uniform(*INCIDENT_SLOWDOWN)
            reason = "incident"
        return factor, reason

    def _travel(self, local_start: datetime, profile: CarrierProfile, about: Leg | None) -> float:
        """The leg's factor before its own noise and incidents."""
        if self.rich is None or about is None:
            return self.congestion(local_start) * profile.speed
        return self.rich.travel(about) * profile.speed

    def closure_s(self, about: Leg) -> float:
        """Seconds of detour around a road closed near the leg (rich world only)."""
        return 0.0 if self.rich is None else self.rich.closure_s(about)

    def expected_leg_s(self, leg: Leg) -> float:
        """Expected true seconds of a leg over the day's noise (per-leg noise, incidents,
        breakdowns, wrong turns, closures), knowing the city and the day's weather: what the
        truth (timeline.route_timeline) gives on average, exactly so when every noise knob
        is 0."""
        profile = self.profile(leg.carrier)
        config = self.config
        sigma = config.leg_noise_sigma * profile.noise
        incident = 1 + config.incident_probability * (_mean(INCIDENT_SLOWDOWN) - 1)
        factor = self._travel(leg.local_start, profile, leg) * math.exp(sigma**2 / 2) * incident
        driving = max(leg.free_flow_s * factor, 1.0)
        breakdown = config.breakdown_probability * _mean(BREAKDOWN_S)
        detour = _mean(WRONG_TURN_OFF_S) + 2 * WRONG_TURN_RAMP_S
        wrong = (1 - config.breakdown_probability) * config.wrong_turn_probability * detour
        closures = 0.0 if self.rich is None else self.rich.expected_closure_s(leg)
        return driving + breakdown + wrong + closures

    def expected_dwell_s(self, visit: Visit) -> float:
        """Expected seconds at the stop over the day's noise (not at home: FAILED_ATTEMPT_S;
        otherwise the usual dwell, its log-normal spread and the odd long dwell)."""
        profile = self.profile(visit.carrier)
        config = self.config
        noise = math.exp(config.dwell_noise_sigma**2 / 2)
        away = self._not_home(visit.address, profile)
        if self.rich is not None:
            seconds, factor = self.rich.dwell(visit)
            usual = seconds * factor * noise * profile.dwell
        else:
            base = self._simple_base_s(visit.address)
            usual = (base * noise + config.dwell_per_parcel_s * visit.parcels) * profile.dwell
        longer = 1 + config.long_dwell_probability * (_mean(LONG_DWELL) - 1)
        return (1 - away) * usual * longer + away * FAILED_ATTEMPT_S

    def sample_leg_s(self, leg: Leg, rng: random.Random, draws: int) -> list[float]:
        """`draws` independent draws of the leg's true seconds from the day's noise, the
        distribution `expected_leg_s` is the mean of (closures at their expected delay): the
        oracle of the ETA evaluation takes medians over these (tracking/eta/oracle.py)."""
        profile = self.profile(leg.carrier)
        config = self.config
        sigma = config.leg_noise_sigma * profile.noise
        base = self._travel(leg.local_start, profile, leg) * leg.free_flow_s
        closures = 0.0 if self.rich is None else self.rich.expected_closure_s(leg)
        detour = 2 * WRONG_TURN_RAMP_S
        out = []
        for _ in range(draws):
            factor = math.exp(rng.gauss(0, sigma))
            if rng.random() < config.incident_probability:
                factor *= rng.uniform(*INCIDENT_SLOWDOWN)
            seconds = max(base * factor, 1.0) + closures
            if rng.random() < config.breakdown_probability:
                seconds += rng.uniform(*BREAKDOWN_S)
            elif rng.random() < config.wrong_turn_probability:
                seconds += rng.uniform(*WRONG_TURN_OFF_S) + detour
            out.append(seconds)
        return out

    def sample_dwell_s(self, visit: Visit, rng: random.Random, draws: int) -> list[float]:
        """`draws` independent draws of the seconds at the stop (what `expected_dwell_s` is
        the mean of)."""
        profile = self.profile(visit.carrier)
        config = self.config
        away = self._not_home(visit.address, profile)
        if self.rich is not None:
            seconds, factor = self.rich.dwell(visit)
            scale, fixed = seconds * factor * profile.dwell, 0.0
        else:
            scale = self._simple_base_s(visit.address) * profile.dwell
            fixed = config.dwell_per_parcel_s * visit.parcels * profile.dwell
        out = []
        for _ in range(draws):
            if rng.random() < away:
                out.append(FAILED_ATTEMPT_S)
                continue
            usual = scale * math.exp(rng.gauss(0, config.dwell_noise_sigma)) + fixed
            if rng.random() < config.long_dwell_probability:
                usual *= rng.uniform(*LONG_DWELL)
            out.append(usual)
        return out

    def breakdown_s(self, route: str, leg: int) -> float:
        rng = self.rng("breakdown", route, leg)
        if rng.random() < self.config.breakdown_probability:
            return rng.uniform(*BREAKDOWN_S)
        return 0.0

    def breakdown_report_s(self, route: str, leg: int) -> float | None:
        """Seconds after a breakdown starts at which the driver reports it from the app, or
        None: not reported (the stall rule is then the only one to notice)."""
        rng = self.rng("breakdown-report", route, leg)
        if rng.random() < self.config.breakdown_report_probability:
            return rng.uniform(60, 240)
        return None

    def offline_window(
        self, route: str, leg: int, profile: CarrierProfile = DEFAULT_PROFILE
    ) -> tuple[float, float] | None:
        """(start, end) as fractions of the leg during which the phone has no signal."""
        rng = self.rng("offline", route, leg)
        if rng.random() < scaled(self.config.offline_probability, profile.gaps):
            start = rng.uniform(0.1, 0.6)
            return start, min(1.0, start + rng.uniform(0.2, 0.5))
        return None

    def stall_fraction(self, route: str, leg: int) -> float:
        """Where in the leg a breakdown happens: on the road, away from the stops."""
        return self.rng("breakdown-at", route, leg).uniform(0.3, 0.7)

    def wrong_turn(self, route: str, leg: int) -> tuple[float, float, float] | None:
        """(start as a fraction of the leg, seconds off the line, metres off) or None."""
        rng = self.rng("wrong-turn", route, leg)
        if rng.random() < self.config.wrong_turn_probability:
            return rng.uniform(0.1, 0.4), rng.uniform(*WRONG_TURN_OFF_S), rng.uniform(450, 900)
        return None

    def start_delay_s(self, route: str, profile: CarrierProfile = DEFAULT_PROFILE) -> float:
        rng = self.rng("late-start", route)
        if rng.random() < scaled(self.config.late_start_probability, profile.late_start):
            return rng.uniform(1500, 3600) * profile.late_start_scale
        return 0.0

    def outage(
        self, route: str, profile: CarrierProfile = DEFAULT_PROFILE
    ) -> tuple[float, float] | None:
        """(start as a fraction of the route's driving, seconds) of a long silence, or None."""
        rng = self.rng("outage", route)
        if rng.random() < scaled(self.config.outage_probability, profile.gaps):
            return rng.uniform(0.15, 0.7), rng.uniform(720, 1500)
        return None

    def battery(self, route: str) -> tuple[float, float, float | None]:
        """(% at the start, % drained per hour, seconds after going under 15 % until the
        driver plugs the phone in, or None: never)."""
        rng = self.rng("battery", route)
        if rng.random() < self.config.low_battery_probability:
            plug = rng.uniform(900, 2400) if rng.random() < 0.5 else None
            return rng.uniform(20, 30), rng.uniform(8, 15), plug
        return rng.uniform(70, 100), rng.uniform(3, 6), None

    def dwell_multiplier(self, stop: str) -> float:
        """A long conversation, a locked building: usually 1."""
        rng = self.rng("long-dwell", stop)
        if rng.random() < self.config.long_dwell_probability:
            return rng.uniform(*LONG_DWELL)
        return 1.0

    def visit_order(self, route: str, stops: list, profile: CarrierProfile = DEFAULT_PROFILE):
        """The order the driver really visits the planned stops in: now and then two
        neighbours swapped (drivers who know the streets, or think they do)."""
        order = list(stops)
        if not profile.resequence:
            return order
        rng, index = self.rng("resequence", route), 0
        while index < len(order) - 1:
            if rng.random() < profile.resequence:
                order[index], order[index + 1] = order[index + 1], order[index]
                index += 2
            else:
                index += 1
        return order

    def at_home(
        self, stop: str, profile: CarrierProfile = DEFAULT_PROFILE, address: str = ""
    ) -> bool:
        return self.rng("home", stop).random() >= self._not_home(address, profile)

    def _not_home(self, address: str, profile: CarrierProfile) -> float:
        """Probability that nobody takes the parcel (the rich world: by building)."""
        away = scaled(self.config.not_home_probability, profile.failures)
        if self.rich is not None:
            away = min(1.0, away * self.rich.not_home(address))
        return away

    def failure_reason(self, stop: str, profile: CarrierProfile = DEFAULT_PROFILE) -> str:
        """Why a failed attempt failed (a FailureReason value), as the carrier's drivers say."""
        reasons, weights = zip(*profile.reasons, strict=True)
        return self.rng("why-failed", stop).choices(reasons, weights=weights)[0]

    def dwell_s(
        self,
        stop: str,
        address: str,
        parcels: int,
        profile: CarrierProfile = DEFAULT_PROFILE,
        *,
        visit: Visit | None = None,
    ) -> float:
        """Seconds at the door of a delivered visit. The rich world reads `visit` (where,
        when, who); without it, only the building and the parcels."""
        noise = math.exp(self.rng("dwell", stop).gauss(0, self.config.dwell_noise_sigma))
        if self.rich is not None:
            if visit is None:
                seconds, factor = self.rich.base_s(address, parcels), 1.0
            else:
                seconds, factor = self.rich.dwell(visit)
            return seconds * factor * noise * profile.dwell
        base = self._simple_base_s(address)
        return (base * noise + self.config.dwell_per_parcel_s * parcels) * profile.dwell

    def _simple_base_s(self, address: str) -> float:
        """The simple world's building: an apartment block for 35 % of addresses (the
        building's draw, from the city: not the visit's)."""
        apartment = self.city_rng("address", address).random() < 0.35
        return self.config.dwell_apartment_s if apartment else self.config.dwell_house_s

    def gps(self, *about, lon: float, lat: float) -> tuple[float, float, float, bool]:
        """(lon, lat, accuracy m, bad) as the phone reports a true position."""
        rng = self.rng("gps", *about)
        if rng.random() < self.config.bad_fix_probability:
            error, accuracy, bad = rng.uniform(300, 900), rng.uniform(150, 800), True
        else:
            error, accuracy, bad = abs(rng.gauss(0, self.config.gps_noise_m)), 0.0, False
            accuracy = max(3.0, self.config.gps_noise_m * rng.uniform(0.8, 1.6))
        bearing = rng.uniform(0, 2 * math.pi)
        dlat = error * math.cos(bearing) / 111_320
        dlon = error * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
        return lon + dlon, lat + dlat, round(accuracy, 1), bad
