"""Learned times with shrinkage: how long a leg and a visit really take for one organization.

Two additive models on the log scale, fitted on the finished stops of recent completed routes
(tracking/eta/learning.py `completed_routes`):

- travel: log(actual / free-flow time) of each leg = mean + an effect per local hour and kind of
  road + one per hour, kind of road and direction + one per carrier and one per driver + one per
  weekday;
- dwell: log(time at the stop) = mean + an effect per kind of building (from the address where
  it says so) + per parcel count + per local hour + per ~500 m cell + per carrier and driver + per
  address.

Each effect is the mean residual of its group shrunk toward zero (toward the levels above it) by
`n / (n + k)`: a group seen `k` times counts half, an address visited once hardly moves its
prediction away from its cell, building and driver (empirical-Bayes partial pooling, as in a
random-effects model). The groups are fitted in turn until they settle (backfitting). The
prediction is exp(the sum) times the mean of exp(residual) (Duan's smearing): a route's ETA
adds the *mean* times of its legs and visits, not their medians.

Why not the gradient-boosted quantile models (learning.py): they stay as a candidate in the
evaluation; the shrunk tables beat them there (docs/ETA.md), cost a dictionary lookup instead of
a model call per leg and stop, and say what they learned in numbers an ops manager can read.

Features the live ETAs know as well as the history does: the leg's free-flow time and straight-
line length (its kind of road: quick legs run on arterials), whether it heads towards the
route's hub or away (rush hours load one direction), the route's driver, the stop's address and
parcels, the local hour and weekday.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from tracking.addresses import building_type
from tracking.geo import distance_m

FACTORS_FORMAT = 1
TRAVEL_GROUPS = {  # group: prior strength k (rows a group needs to count half)
    "hour_road": 10,
    "hour_road_way": 30,
    "carrier": 10,
    "driver": 10,
    "weekday": 80,
}
DWELL_GROUPS = {
    "building": 20,
    "parcels": 20,
    "hour": 40,
    "cell": 15,
    "carrier": 10,
    "driver": 10,
    "address": 3,
}
BACKFIT_ROUNDS = 6
TRIM_SHARE = 0.05  # the slowest legs (stalls, crashes) leave the fit: unforeseeable
ARTERIAL_CROW_MPS = 7.5  # straight-line speed at free flow; ~35 km/h on the road (circuity 1.3)
SHORT_LEG_M = 300  # too short to reach an arterial
CELL_DEG = 0.005  # ~500 m
MEMO_SIZE = 50_000  # remembered predictions per model version (then forgotten at once)


def road_kind(free_flow_s: float, crow_m: float) -> str:
    """'a' (arterial: the leg is quick at free flow) or 'l' (local streets)."""
    if crow_m < SHORT_LEG_M or free_flow_s <= 0:
        return "l"
    return "a" if crow_m / free_flow_s >= ARTERIAL_CROW_MPS else "l"


def heading_way(origin, destination, hub) -> str:
    """'in' when the leg ends nearer the route's hub than it starts, else 'out'."""
    if hub is None:
        return "in"
    start = distance_m(origin.y, origin.x, hub.y, hub.x)
    end = distance_m(destination.y, destination.x, hub.y, hub.x)
    return "in" if end < start else "out"


def address_key(address: str) -> str:
    return " ".join((address or "").lower().replace(",", " ").split())


def cell_of(point) -> str:
    return f"{math.floor(point.y / CELL_DEG)}:{math.floor(point.x / CELL_DEG)}"


Crew = tuple  # (carrier id, driver id): who drives the route; either may be None


def crew_keys(crew: Crew) -> dict[str, str]:
    """The carrier's group, and the driver's within it (a new driver starts at the carrier's
    pace, not the organization's)."""
    carrier, driver = crew
    return {"carrier": str(carrier or ""), "driver": f"{carrier or ''}:{driver or ''}"}


def leg_keys(
    *, hour: int, weekday: int, free_flow_s: float, crow_m: float, way: str, crew: Crew
) -> dict[str, str]:
    road = road_kind(free_flow_s, crow_m)
    return {
        "hour_road": f"{hour}:{road}",
        "hour_road_way": f"{hour}:{road}:{way}",
        **crew_keys(crew),
        "weekday": str(weekday),
    }


@functools.lru_cache(maxsize=100_000)
def _address_keys(address: str) -> tuple[str, str]:
    """(building, address key) of an address: parsed once, not on every recompute."""
    return building_type(address), address_key(address)


def visit_keys(*, hour: int, address: str, parcels: int, point, crew: Crew) -> dict[str, str]:
    building, key = _address_keys(address or "")
    return {
        "building": building,
        "parcels": str(min(max(int(parcels or 1), 1), 4)),
        "hour": str(hour),
        "cell": cell_of(point),
        **crew_keys(crew),
        "address": key,
    }


@dataclass
class Additive:
    """exp(mean + the effects of a row's groups) × smear; see the module docstring."""

    mean: float = 0.0
    smear: float = 1.0
    effects: dict[str, dict[str, float]] = field(default_factory=dict)

    def log_of(self, keys: dict[str, str]) -> float:
        return self.mean + sum(self.effects.get(g, {}).get(k, 0.0) for g, k in keys.items())

    def predict(self, keys: dict[str, str]) -> float:
        return math.exp(self.log_of(keys)) * self.smear

    def as_json(self) -> dict:
        return {"mean": self.mean, "smear": self.smear, "effects": self.effects}

    @classmethod
    def of(cls, data: dict) -> Additive:
        return cls(data["mean"], data["smear"], data["effects"])


def fit_additive(rows: list[dict[str, str]], y: list[float], strengths: dict[str, int]):
    """Backfit shrunk group effects of `rows` (each {group: key}) on the log targets `y`."""
    n = len(y)
    mean = sum(y) / n
    effects: dict[str, dict[str, float]] = {g: {} for g in strengths}
    fitted = [0.0] * n  # the sum of every group's effect per row
    for _round in range(BACKFIT_ROUNDS):
        for group, k in strengths.items():
            own = effects[group]
            sums: dict[str, float] = {}
            counts: dict[str, int] = {}
            for row, target, total in zip(rows, y, fitted, strict=True):
                key = row[group]
                partial = target - mean - (total - own.get(key, 0.0))
                sums[key] = sums.get(key, 0.0) + partial
                counts[key] = counts.get(key, 0) + 1
            new = {key: sums[key] / (counts[key] + k) for key in sums}
            fitted = [
                total - own.get(row[group], 0.0) + new[row[group]]
                for row, total in zip(rows, fitted, strict=True)
            ]
            effects[group] = new
    residuals = [target - mean - total for target, total in zip(y, fitted, strict=True)]
    smear = sum(math.exp(r) for r in residuals) / n
    rounded = {
        g: {k: round(v, 4) for k, v in e.items() if abs(v) >= 1e-4} for g, e in effects.items()
    }
    return Additive(round(mean, 5), round(smear, 5), rounded)


def fit_trimmed(rows, y, strengths) -> Additive:
    """Fit, leave out the TRIM_SHARE rows furthest above their fit (stalls, crashes, a chat at
    the door), fit again: the rare and unforeseeable belong to the window's late side."""
    first = fit_additive(rows, y, strengths)
    excess = sorted(range(len(y)), key=lambda i: y[i] - first.log_of(rows[i]), reverse=True)[
        : int(len(y) * TRIM_SHARE)
    ]
    drop = set(excess)
    kept = [i for i in range(len(y)) if i not in drop]
    return fit_additive([rows[i] for i in kept], [y[i] for i in kept], strengths)


@dataclass
class LearnedTimes:
    """An organization's learned travel factors and dwell times (one EtaModel version).

    Every ping recomputes a route's ETAs through these, leg by leg and stop by stop; the same
    few hundred keys come back all day, so each prediction is remembered (up to MEMO_SIZE)."""

    version: int
    travel: Additive
    dwell: Additive
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def _remembered(self, key: tuple, model: Additive, keys) -> float:
        """`model.predict(keys())`, remembered by `key` (what the keys are made of)."""
        value = self._memo.get(key)
        if value is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            value = self._memo[key] = model.predict(keys())
        return value

    def travel_factor(
        self,
        *,
        local_hour: float,
        weekday: int,
        free_flow_s: float,
        crow_m: float,
        way: str,
        crew: Crew = (None, None),
    ) -> float:
        """Actual / free-flow time of a leg starting at `local_hour` (interpolated between the
        middles of the hours: traffic builds up and eases off gradually)."""
        position = local_hour - 0.5
        low = math.floor(position)
        share = position - low
        road = road_kind(free_flow_s, crow_m)

        def at(hour: int) -> float:
            hour %= 24
            return self._remembered(
                ("leg", hour, weekday, road, way, crew),
                self.travel,
                lambda: leg_keys(
                    hour=hour,
                    weekday=weekday,
                    free_flow_s=free_flow_s,
                    crow_m=crow_m,
                    way=way,
                    crew=crew,
                ),
            )

        return at(low) * (1 - share) + at(low + 1) * share

    def dwell_s(
        self, *, address: str, parcels: int, location, local_hour: float, crew: Crew = (None, None)
    ):
        hour = int(local_hour)
        return self._remembered(
            ("visit", hour, address, parcels, cell_of(location), crew),
            self.dwell,
            lambda: visit_keys(
                hour=hour, address=address, parcels=parcels, point=location, crew=crew
            ),
        )

    def as_json(self) -> dict:
        return {
            "format": FACTORS_FORMAT,
            "travel": self.travel.as_json(),
            "dwell": self.dwell.as_json(),
        }

    @classmethod
    def of(cls, version: int, data: dict | None) -> LearnedTimes | None:
        if not data or data.get("format") != FACTORS_FORMAT:
            return None
        return cls(version, Additive.of(data["travel"]), Additive.of(data["dwell"]))
