"""The bound of the ETA evaluation: what someone who knew the hidden world would predict.

The oracle knows the simulator's parameters (tracking/simulation/world.py: congestion by hour,
road class and direction, each driver's pace, the dwell of each kind of building and area, the
day's weather) but not the day's random draws (a leg's own noise, a crash, a breakdown, who is
not at home): it predicts each leg and visit at its *expected* duration
(`World.expected_leg_s`, `World.expected_dwell_s`). No method that learns from history can know
more, so the honest target of the live ETAs is a ratio to its error, not to a baseline we chose.
On days without noise it is exact (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tracking.eta.engine import remaining_dwell_s
from tracking.simulation.world import Leg, Visit, World


@dataclass(frozen=True)
class OracleRoute:
    """From where the vehicle is (`points[0]`) through the stops ahead."""

    points: list
    legs_s: list[float]  # free-flow seconds of each leg
    lengths_m: list[float]
    addresses: list[str]
    parcels: list[int]
    driver: str = ""
    carrier: str = ""


@dataclass(frozen=True)
class OracleVisit:
    """The stop the vehicle stands at, and for how long it has."""

    address: str
    parcels: int
    location: object
    arrival: datetime
    elapsed_s: float


def oracle_arrivals(
    world: World,
    route: OracleRoute,
    now: datetime,
    *,
    standing: OracleVisit | None = None,
    zone,
) -> list[tuple[datetime, datetime, datetime]]:
    """(eta, eta, eta) per stop ahead (the oracle gives no window)."""
    t = now
    if standing is not None:
        expected = world.expected_dwell_s(
            Visit(
                address=standing.address,
                parcels=standing.parcels,
                location=(standing.location.x, standing.location.y),
                local_arrival=standing.arrival.astimezone(zone),
                driver=route.driver,
                carrier=route.carrier,
            )
        )
        t += timedelta(seconds=remaining_dwell_s(expected, standing.elapsed_s))
    out = []
    points = route.points
    for index, free_flow in enumerate(route.legs_s):
        origin, destination = points[index], points[index + 1]
        t += timedelta(
            seconds=world.expected_leg_s(
                Leg(
                    local_start=t.astimezone(zone),
                    free_flow_s=float(free_flow),
                    length_m=float(route.lengths_m[index]),
                    origin=(origin.x, origin.y),
                    destination=(destination.x, destination.y),
                    driver=route.driver,
                    carrier=route.carrier,
                )
            )
        )
        out.append((t, t, t))
        t += timedelta(
            seconds=world.expected_dwell_s(
                Visit(
                    address=route.addresses[index],
                    parcels=route.parcels[index],
                    location=(destination.x, destination.y),
                    local_arrival=t.astimezone(zone),
                    driver=route.driver,
                    carrier=route.carrier,
                )
            )
        )
    return out
