"""What really happens to one route: true positions over time and what happens at each stop.

Computed up front from the world (deterministic), then played out by the runner. Vehicles drive
the fastest road path between stops (tracking/roads/routing.py) at the free-flow time times the
world's factor for that leg; they wait at each stop for a dwell that depends on the address and
the parcels; customers who are out make the attempt fail.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.gis.geos import Point

from tracking.geo import distance_m
from tracking.roads.routing import route_path
from tracking.simulation.world import (
    FAILED_ATTEMPT_S,
    WRONG_TURN_RAMP_S,
    Leg,
    Visit,
    World,
    WorldConfig,
)

# Legs already routed in this history replay: the day's plan and its replay drive the same legs
# (a leg costs a road-network query), and a long-lived process must not keep them (the network
# may be reloaded), so the memo lives only inside `cached_legs()`.
_legs: ContextVar[dict | None] = ContextVar("simulation_legs", default=None)


@contextmanager
def cached_legs() -> Iterator[None]:
    token = _legs.set({})
    try:
        yield
    finally:
        _legs.reset(token)


def leg_path(origin: Point, destination: Point):
    """The fastest road path between two points (tracking/roads/routing.py `route_path`),
    memoized inside `cached_legs()`. Read-only: callers must not change it."""
    memo = _legs.get()
    if memo is None:
        return route_path([origin, destination])
    key = (origin.x, origin.y, destination.x, destination.y)
    if key not in memo:
        memo[key] = route_path([origin, destination])
    return memo[key]


@dataclass(frozen=True)
class StopPlan:
    stop_id: int
    sequence: int
    location: Point
    address: str
    parcels: int
    shipment_ids: tuple[int, ...]
    barcodes: tuple[str, ...]
    window_end: datetime | None = None


def stop_plan(stop) -> StopPlan:
    """A stop as the simulated world needs it (prefetch `shipments` for many stops)."""
    shipments = list(stop.shipments.all())
    return StopPlan(
        stop_id=stop.pk,
        sequence=stop.sequence,
        location=stop.location,
        address=stop.address,
        parcels=sum(s.parcel_count for s in shipments) or 1,
        shipment_ids=tuple(s.pk for s in shipments),
        barcodes=tuple(s.barcode for s in shipments),
        window_end=stop.window_end,
    )


@dataclass
class Sample:
    t: datetime
    lon: float
    lat: float
    speed_mps: float
    heading: float
    offline: bool = False
    battery_pct: int | None = None
    charging: bool | None = None


@dataclass
class StopTruth:
    stop_id: int
    sequence: int
    arrival: datetime
    departure: datetime
    outcome: str  # "delivered" | "failed"
    reason: str = ""


@dataclass
class RouteTimeline:
    route_id: int
    code: str
    start: datetime
    samples: list[Sample] = field(default_factory=list)
    stops: list[StopTruth] = field(default_factory=list)
    legs: list[dict] = field(default_factory=list)
    # Ground truth of what the exception rules should notice: {"kind", "started_at",
    # "ended_at", ...} (docs/SIMULATION.md "Injected conditions").
    conditions: list[dict] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return self.samples[-1].t if self.samples else self.start


def _heading(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[1] + b[1]) / 2)
    return math.degrees(math.atan2((b[0] - a[0]) * math.cos(lat), b[1] - a[1])) % 360


def _drive(coords, start: datetime, duration_s: float, interval_s: int, offline) -> list[Sample]:
    """Samples every `interval_s` along the polyline at constant speed over `duration_s`."""
    cumulative = [0.0]
    for a, b in zip(coords, coords[1:], strict=False):
        cumulative.append(cumulative[-1] + distance_m(a[1], a[0], b[1], b[0]))
    total = cumulative[-1]
    speed = total / duration_s if duration_s > 0 else 0.0
    samples, elapsed, segment = [], float(interval_s), 0
    while elapsed < duration_s:
        target = total * elapsed / duration_s
        while segment < len(coords) - 2 and cumulative[segment + 1] < target:
            segment += 1
        a, b = coords[segment], coords[min(segment + 1, len(coords) - 1)]
        span = cumulative[segment + 1] - cumulative[segment] if segment + 1 < len(coords) else 0
        share = (target - cumulative[segment]) / span if span else 0.0
        lon, lat = a[0] + (b[0] - a[0]) * share, a[1] + (b[1] - a[1]) * share
        fraction = elapsed / duration_s
        samples.append(
            Sample(
                t=start + timedelta(seconds=elapsed),
                lon=lon,
                lat=lat,
                speed_mps=speed,
                heading=_heading(a, b),
                offline=offline is not None and offline[0] <= fraction < offline[1],
            )
        )
        elapsed += interval_s
    return samples


LOW_BATTERY_PCT = 15  # the truth of "battery low" is the platform's default threshold
# A wrong turn drifts off the line and back, not in one jump (world.py counts the ramps in the
# expected leg time).
DETOUR_RAMP_S = WRONG_TURN_RAMP_S


def _offset(sample: Sample, bearing: float, metres: float) -> None:
    sample.lat += metres * math.cos(bearing) / 111_320
    sample.lon += metres * math.sin(bearing) / (111_320 * math.cos(math.radians(sample.lat)))


def _metres_from_line(lon: float, lat: float, coords) -> float:
    """Distance from a point to a polyline (local equirectangular metres: legs are a few km)."""
    kx = 111_320 * math.cos(math.radians(lat))
    best = math.inf
    for (ax, ay), (bx, by) in zip(coords, coords[1:], strict=False):
        ax, bx = (ax - lon) * kx, (bx - lon) * kx
        ay, by = (ay - lat) * 111_320, (by - lat) * 111_320
        dx, dy = bx - ax, by - ay
        span = dx * dx + dy * dy
        share = 0.0 if span == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / span))
        best = min(best, math.hypot(ax + share * dx, ay + share * dy))
    return best


def _detour(at, origin: Sample, heading: float, side: float, metres: float, total, step):
    along = math.radians(heading)
    detour, elapsed = [], float(step)
    while elapsed < total:
        sample = Sample(at + timedelta(seconds=elapsed), origin.lon, origin.lat, 8.0, heading)
        ramp = min(1.0, elapsed / DETOUR_RAMP_S, (total - elapsed) / DETOUR_RAMP_S)
        _offset(sample, side, metres * ramp)
        # Driving around the wrong streets, not parked: back and forth along the line.
        _offset(sample, along, 250 * math.sin(2 * math.pi * elapsed / 300))
        detour.append(sample)
        elapsed += step
    return detour


def _wrong_turn(
    samples: list[Sample], start: datetime, here: Point, duration, turn, step, leg=None
):
    """A wrong turn mid-leg: the vehicle drifts off the planned line (perpendicular, ramped),
    wanders there, and comes back; the rest of the leg is later by the detour. A wrong turn
    leaves the leg: of the two sides, the one that stays farther from the leg's line (`leg`,
    its coordinates; a leg that bends back towards one side would bring that side near it).
    Returns the samples and the truth, with how close the fully-off part came to the leg."""
    fraction, off_s, metres = turn
    at = start + timedelta(seconds=fraction * duration)
    before = [s for s in samples if s.t <= at]
    after = [s for s in samples if s.t > at]
    origin = before[-1] if before else Sample(at, here.x, here.y, 0.0, 0.0)
    heading = (after[0] if after else origin).heading
    total = off_s + 2 * DETOUR_RAMP_S
    begin = at + timedelta(seconds=DETOUR_RAMP_S)
    end = at + timedelta(seconds=total - DETOUR_RAMP_S)
    best, closest = None, None
    for side in (heading + 90, heading - 90):
        detour = _detour(at, origin, heading, math.radians(side), metres, total, step)
        if leg is None or len(leg) < 2:
            best = detour
            break
        nearest = min(
            (_metres_from_line(s.lon, s.lat, leg) for s in detour if begin <= s.t <= end),
            default=math.inf,
        )
        if closest is None or nearest > closest:
            best, closest = detour, nearest
    for sample in after:
        sample.t += timedelta(seconds=total)
    truth = {
        "kind": "off_route",
        "started_at": begin,  # fully off from here
        "ended_at": end,
        "left_line_at": at,
        "offset_m": round(metres, 1),
    }
    if closest is not None:
        truth["leg_distance_min_m"] = round(closest, 1)
    return [*before, *best, *after], truth, total


def _stall(samples: list[Sample], start: datetime, here: Point, duration, stall, fraction, step):
    """Stop the vehicle mid-leg for `stall` seconds (the later samples shift). Returns the
    samples, where and when it stood."""
    at = start + timedelta(seconds=fraction * duration)
    before = [s for s in samples if s.t <= at]
    after = [s for s in samples if s.t > at]
    lon, lat = (before[-1].lon, before[-1].lat) if before else (here.x, here.y)
    standing, t = [], at
    while t < at + timedelta(seconds=stall):
        standing.append(Sample(t, lon, lat, 0.0, 0.0))
        t += timedelta(seconds=step)
    for sample in after:
        sample.t += timedelta(seconds=stall)
    return [*before, *standing, *after], (lon, lat), at


ORDINARY_DWELL_QUANTILE = 0.999  # a long dwell outlasts 999 ordinary visits in 1,000
ORDINARY_DWELL_DRAWS = 20_000


@functools.lru_cache(maxsize=64)
def _ordinary_ceiling(config: WorldConfig, parcels: int) -> float:
    world = World(config)
    draws = sorted(
        world.dwell_s(f"ordinary:{i}", f"ordinary-address:{i}", parcels)
        for i in range(ORDINARY_DWELL_DRAWS)
    )
    return draws[int(ORDINARY_DWELL_QUANTILE * len(draws))]


def ordinary_dwell_ceiling_s(world: World, parcels: int) -> float:
    """How long an ordinary delivered visit with `parcels` parcels lasts at most (its
    ORDINARY_DWELL_QUANTILE in this world: houses and apartment blocks, the log-normal spread,
    the parcels), drawn from the world's own `dwell_s` so it follows the knobs. A long dwell
    (`dwell_multiplier`) that stays under it is not abnormal: the truth calls it a slow visit."""
    return _ordinary_ceiling(world.config, max(1, int(parcels)))


def _silences(timeline: RouteTimeline) -> None:
    """Every stretch without signal as a signal-lost truth: from the last fix that got through
    to the first one after (when the phone also flushes what it kept)."""
    last_online = timeline.start
    begin = None
    for sample in timeline.samples:
        if sample.offline and begin is None:
            begin = last_online
        elif not sample.offline:
            if begin is not None:
                timeline.conditions.append(
                    {"kind": "signal_lost", "started_at": begin, "ended_at": sample.t}
                )
                begin = None
            last_online = sample.t


def _reports_wait_for_signal(timeline: RouteTimeline) -> None:
    """A breakdown report made without signal leaves the phone with the first fix that gets
    through (the app queues it like its fixes): `reported_at` is when it is sent."""
    for condition in timeline.conditions:
        if condition["kind"] != "breakdown":
            continue
        reported = condition["reported_at"].replace(microsecond=0)
        sent = next((s.t for s in timeline.samples if s.t >= reported and not s.offline), None)
        condition["reported_at"] = sent or reported


def _battery(world: World, key: str, timeline: RouteTimeline) -> None:
    start_pct, drain, plug_after = world.battery(key)
    low_at = plugged_at = None
    for sample in timeline.samples:
        hours = (sample.t - timeline.start).total_seconds() / 3600
        pct = start_pct - drain * hours
        if low_at is None and pct < LOW_BATTERY_PCT:
            low_at = sample.t
            if plug_after is not None:
                plugged_at = low_at + timedelta(seconds=plug_after)
        if plugged_at is not None and sample.t >= plugged_at:
            since = (sample.t - plugged_at).total_seconds() / 3600
            pct = LOW_BATTERY_PCT - 1 + 20 * since
            sample.charging = True
        else:
            sample.charging = False
        sample.battery_pct = max(1, min(100, int(pct)))
    if low_at is not None:
        timeline.conditions.append(
            {"kind": "battery_low", "started_at": low_at, "ended_at": plugged_at or timeline.end}
        )


def route_timeline(
    world: World,
    *,
    route_id: int,
    code: str,
    day: str,
    start: datetime,
    start_point: Point,
    hub: Point,
    stops: list[StopPlan],
    zone: ZoneInfo,
    interval_s: int = 5,
    may_start_late: bool = False,
    carrier: str = "",
    driver: str = "",
) -> RouteTimeline:
    """Drive from `start_point` through the stops and back to the hub. `may_start_late`: the
    route has not started yet, so the world may make it leave late. `carrier`: the code of the
    route's carrier, whose profile (world.PROFILES) shapes the day; `driver`: the driver's code
    (external id, "DRV-003"), whose pace the rich world knows."""
    key = f"{day}:{code}"
    profile = world.profile(carrier)
    delay = world.start_delay_s(key, profile) if may_start_late else 0.0
    actual_start = start + timedelta(seconds=delay)
    timeline = RouteTimeline(route_id=route_id, code=code, start=actual_start)
    if delay:
        timeline.conditions.append(
            {"kind": "route_not_started", "started_at": start, "ended_at": actual_start}
        )
    stops = world.visit_order(key, stops, profile)
    places = [hub, *(s.location for s in stops)]
    t, here = actual_start, start_point
    for leg, stop in enumerate([*stops, None], start=1):
        destination = hub if stop is None else stop.location
        path = leg_path(here, destination)
        about = Leg(
            local_start=t.astimezone(zone),
            free_flow_s=path.duration_s,
            length_m=path.length_m,
            origin=(here.x, here.y),
            destination=(destination.x, destination.y),
            driver=driver,
            carrier=carrier,
        )
        factor, why = world.leg_factor(key, leg, about.local_start, profile, about=about)
        stall = world.breakdown_s(key, leg)
        closed = world.closure_s(about)  # a detour around a closed road, driven slower
        if closed:
            why = "closure"
        duration = max(path.duration_s * factor, 1.0) + closed
        offline = world.offline_window(key, leg, profile)
        samples = _drive(list(path.geometry.coords), t, duration, interval_s, offline)
        turn = None if stall else world.wrong_turn(key, leg)  # one mishap per leg
        detour = 0.0
        if turn is not None:
            samples, truth, detour = _wrong_turn(
                samples, t, here, duration, turn, interval_s, leg=list(path.geometry.coords)
            )
            timeline.conditions.append({**truth, "leg": leg})
        if stall:  # broken down on the road, away from the stops, for a while
            fraction = world.stall_fraction(key, leg)
            samples, (lon, lat), at = _stall(
                samples, t, here, duration, stall, fraction, interval_s
            )
            timeline.conditions.append(
                {
                    "kind": "stalled",
                    "leg": leg,
                    "started_at": at,
                    "ended_at": at + timedelta(seconds=stall),
                    "lon": lon,
                    "lat": lat,
                    "nearest_stop_m": round(min(distance_m(lat, lon, p.y, p.x) for p in places), 1),
                }
            )
            report = world.breakdown_report_s(key, leg)
            if report is not None:  # the driver also reports it from the app (incident alert)
                timeline.conditions.append(
                    {
                        "kind": "breakdown",
                        "leg": leg,
                        "started_at": at,
                        "ended_at": at + timedelta(seconds=stall),
                        "reported_at": at + timedelta(seconds=report),
                        "lon": lon,
                        "lat": lat,
                    }
                )
        timeline.samples.extend(samples)
        arrival = t + timedelta(seconds=duration + stall + detour)
        timeline.legs.append(
            {
                "leg": leg,
                "free_flow_s": round(path.duration_s, 1),
                "factor": round(factor, 3),
                "why": why,
                "stall_s": round(stall, 1),
                "closure_s": round(closed, 1),
                "length_m": round(path.length_m, 1),
                "offline": offline,
            }
        )
        if stop is None:
            timeline.samples.append(Sample(arrival, hub.x, hub.y, 0.0, 0.0))
            break
        stop_key = f"{key}:{stop.sequence}"
        delivered = world.at_home(stop_key, profile, stop.address)
        reason = "" if delivered else world.failure_reason(stop_key, profile)
        visit = Visit(
            address=stop.address,
            parcels=stop.parcels,
            location=(stop.location.x, stop.location.y),
            local_arrival=arrival.astimezone(zone),
            driver=driver,
            carrier=carrier,
        )
        dwell = (
            world.dwell_s(stop_key, stop.address, stop.parcels, profile, visit=visit)
            if delivered
            else FAILED_ATTEMPT_S
        )
        longer = world.dwell_multiplier(stop_key) if delivered else 1.0
        departure = arrival + timedelta(seconds=dwell * longer)
        if longer > 1.0:
            ceiling = ordinary_dwell_ceiling_s(world, stop.parcels)
            timeline.conditions.append(
                {
                    # Longer than (nearly) any ordinary visit: a long dwell. Within that range
                    # (a slow house visit lasts what an apartment block's does): not one.
                    "kind": "long_dwell" if dwell * longer > ceiling else "slow_visit",
                    "stop": stop.stop_id,
                    "sequence": stop.sequence,
                    "started_at": arrival,
                    "ended_at": departure,
                    "usual_dwell_s": round(dwell, 1),
                    "dwell_s": round(dwell * longer, 1),
                    "ordinary_ceiling_s": round(ceiling, 1),
                }
            )
        if not delivered:
            timeline.conditions.append(
                {
                    "kind": "failed_attempt",
                    "stop": stop.stop_id,
                    "sequence": stop.sequence,
                    "started_at": departure,
                    "ended_at": None,
                    "reason": reason,
                }
            )
        if stop.window_end is not None and arrival > stop.window_end:
            timeline.conditions.append(
                {
                    "kind": "predicted_late",
                    "stop": stop.stop_id,
                    "sequence": stop.sequence,
                    "started_at": stop.window_end,  # lead time is counted back from here
                    "ended_at": arrival,
                    "window_end": stop.window_end,
                }
            )
        waiting = arrival
        while waiting < departure:  # parked at the door, still reporting
            timeline.samples.append(Sample(waiting, stop.location.x, stop.location.y, 0.0, 0.0))
            waiting += timedelta(seconds=max(interval_s, 30))
        timeline.stops.append(
            StopTruth(
                stop_id=stop.stop_id,
                sequence=stop.sequence,
                arrival=arrival,
                departure=departure,
                outcome="delivered" if delivered else "failed",
                reason=reason,
            )
        )
        t, here = departure, stop.location
    outage = world.outage(key, profile)
    if outage is not None and timeline.samples:
        span = (timeline.samples[-1].t - actual_start).total_seconds()
        quiet_from = actual_start + timedelta(seconds=outage[0] * span)
        quiet_to = quiet_from + timedelta(seconds=outage[1])
        for sample in timeline.samples:
            if quiet_from <= sample.t < quiet_to:
                sample.offline = True
    # Devices report whole seconds (OsmAnd, OwnTracks): one true position per second at most.
    kept, last = [], None
    for sample in timeline.samples:
        sample.t = sample.t.replace(microsecond=0)
        if sample.t != last:
            kept.append(sample)
            last = sample.t
    timeline.samples = kept
    _silences(timeline)
    _reports_wait_for_signal(timeline)
    _battery(world, key, timeline)
    for condition in timeline.conditions:
        condition["route"] = code
        condition["route_id"] = route_id
    timeline.conditions.sort(key=lambda c: (c["started_at"], c["kind"]))
    return timeline
