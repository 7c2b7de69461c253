"""The bound of the ETA evaluation: what someone who knew the hidden world would predict.

The oracle knows the simulator's parameters (tracking/simulation/world.py: congestion by hour,
road class and direction, each driver's pace, the dwell of each kind of building and area, the
day's weather) but not the day's random draws (a leg's own noise, a crash, a breakdown, who is
not at home): it knows the distribution of every leg and visit and predicts the median arrival
over draws of them (`oracle_arrivals`). No method that learns from history can know
more, so the honest target of the live ETAs is a ratio to its error, not to a baseline we chose.
On days without noise it is exact (tested): every draw is the truth.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from tracking.eta.engine import MIN_REMAINING_DWELL_S
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


DRAWS = 64  # draws of the day's noise per prediction: the median's error is ~1/8 of a spread


def oracle_arrivals(
    world: World,
    route: OracleRoute,
    now: datetime,
    *,
    standing: OracleVisit | None = None,
    zone,
    rng: random.Random,
) -> list[tuple[datetime, datetime, datetime]]:
    """(eta, eta, eta) per stop ahead (the oracle gives no window): the median arrival over
    DRAWS draws of the day's noise (`World.sample_leg_s`, `sample_dwell_s`), each leg and visit
    of the world's parameters at the hour it is expected to happen. The median, not the mean:
    the error measured is the absolute one, and the mean of a skewed arrival (a breakdown in
    fifty legs) is not the best guess of it."""
    totals = [0.0] * DRAWS
    expected_t = now
    if standing is not None:
        visit = _visit(standing.address, standing.parcels, standing.location, standing.arrival)
        draws = world.sample_dwell_s(_with(visit, route, zone), rng, DRAWS)
        # Still there after `elapsed_s`: what is left of the draws that last that long.
        left = [d - standing.elapsed_s for d in draws if d > standing.elapsed_s]
        left = left or [MIN_REMAINING_DWELL_S]
        totals = [max(left[k % len(left)], MIN_REMAINING_DWELL_S) for k in range(DRAWS)]
        expected_t += timedelta(seconds=statistics.median(totals))
    out = []
    points = route.points
    for index, free_flow in enumerate(route.legs_s):
        origin, destination = points[index], points[index + 1]
        leg = Leg(
            local_start=expected_t.astimezone(zone),
            free_flow_s=float(free_flow),
            length_m=float(route.lengths_m[index]),
            origin=(origin.x, origin.y),
            destination=(destination.x, destination.y),
            driver=route.driver,
            carrier=route.carrier,
        )
        totals = [t + d for t, d in zip(totals, world.sample_leg_s(leg, rng, DRAWS), strict=True)]
        eta = now + timedelta(seconds=statistics.median(totals))
        out.append((eta, eta, eta))
        visit = _visit(route.addresses[index], route.parcels[index], destination, eta)
        dwells = world.sample_dwell_s(_with(visit, route, zone), rng, DRAWS)
        totals = [t + d for t, d in zip(totals, dwells, strict=True)]
        expected_t = now + timedelta(seconds=statistics.median(totals))
    return out


def _visit(address, parcels, location, arrival) -> dict:
    return {"address": address, "parcels": parcels, "location": location, "arrival": arrival}


def _with(visit: dict, route: OracleRoute, zone) -> Visit:
    return Visit(
        address=visit["address"],
        parcels=visit["parcels"],
        location=(visit["location"].x, visit["location"].y),
        local_arrival=visit["arrival"].astimezone(zone),
        driver=route.driver,
        carrier=route.carrier,
    )
