"""What really happens to one route: true positions over time and what happens at each stop.

Computed up front from the world (deterministic), then played out by the runner. Vehicles drive
the fastest road path between stops (tracking/roads/routing.py) at the free-flow time times the
world's factor for that leg; they wait at each stop for a dwell that depends on the address and
the parcels; customers who are out make the attempt fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.gis.geos import Point

from tracking.geo import distance_m
from tracking.roads.routing import route_path
from tracking.simulation.world import World


@dataclass(frozen=True)
class StopPlan:
    stop_id: int
    sequence: int
    location: Point
    address: str
    parcels: int
    shipment_ids: tuple[int, ...]
    barcodes: tuple[str, ...]


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
    )


@dataclass
class Sample:
    t: datetime
    lon: float
    lat: float
    speed_mps: float
    heading: float
    offline: bool = False


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
) -> RouteTimeline:
    """Drive from `start_point` through the stops and back to the hub."""
    key = f"{day}:{code}"
    timeline = RouteTimeline(route_id=route_id, code=code, start=start)
    t, here = start, start_point
    for leg, stop in enumerate([*stops, None], start=1):
        destination = hub if stop is None else stop.location
        path = route_path([here, destination])
        factor, why = world.leg_factor(key, leg, t.astimezone(zone))
        stall = world.breakdown_s(key, leg)
        duration = max(path.duration_s * factor, 1.0)
        offline = world.offline_window(key, leg)
        timeline.samples.extend(
            _drive(list(path.geometry.coords), t, duration, interval_s, offline)
        )
        if stall:  # stuck mid-leg: the vehicle stands still where its leg ends for a while
            timeline.samples.append(
                Sample(t + timedelta(seconds=duration), destination.x, destination.y, 0.0, 0.0)
            )
        arrival = t + timedelta(seconds=duration + stall)
        timeline.legs.append(
            {
                "leg": leg,
                "free_flow_s": round(path.duration_s, 1),
                "factor": round(factor, 3),
                "why": why,
                "stall_s": round(stall, 1),
                "length_m": round(path.length_m, 1),
                "offline": offline,
            }
        )
        if stop is None:
            timeline.samples.append(Sample(arrival, hub.x, hub.y, 0.0, 0.0))
            break
        stop_key = f"{key}:{stop.sequence}"
        delivered = world.at_home(stop_key)
        dwell = world.dwell_s(stop_key, stop.address, stop.parcels) if delivered else 60.0
        departure = arrival + timedelta(seconds=dwell)
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
                reason="" if delivered else "not_home",
            )
        )
        t, here = departure, stop.location
    # Devices report whole seconds (OsmAnd, OwnTracks): one true position per second at most.
    kept, last = [], None
    for sample in timeline.samples:
        sample.t = sample.t.replace(microsecond=0)
        if sample.t != last:
            kept.append(sample)
            last = sample.t
    timeline.samples = kept
    return timeline
