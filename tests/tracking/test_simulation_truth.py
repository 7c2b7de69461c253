"""The truth of long dwells and wrong turns (tracking/simulation/timeline.py): a long dwell is
abnormal by the world's own ordinary visits, a wrong turn leaves its leg. Pure (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.gis.geos import Point

from tracking.simulation.timeline import (
    _drive,
    _metres_from_line,
    _wrong_turn,
    ordinary_dwell_ceiling_s,
)
from tracking.simulation.world import World, WorldConfig


def test_the_ordinary_dwell_ceiling_is_what_one_visit_in_a_thousand_exceeds():
    world = World(WorldConfig(seed=42))
    one, three = ordinary_dwell_ceiling_s(world, 1), ordinary_dwell_ceiling_s(world, 3)
    assert three > one  # more parcels, longer visits
    # Fresh visits the ceiling never saw: about 0.1 % are longer.
    draws = [world.dwell_s(f"check:{i}", f"check-address:{i}", 1) for i in range(20_000)]
    share = sum(d > one for d in draws) / len(draws)
    assert 0.0 < share < 0.003
    # A house visit made 4x longer often stays under it: not abnormal, a "slow visit".
    assert 4 * (world.config.dwell_house_s + world.config.dwell_per_parcel_s) < one
    # It follows the knobs: slower apartment blocks, a higher ceiling.
    slower = World(WorldConfig(seed=42, dwell_apartment_s=480.0))
    assert ordinary_dwell_ceiling_s(slower, 1) > one * 1.5


def test_a_wrong_turn_takes_the_side_away_from_a_leg_that_bends():
    # East along -29.90, then the leg turns north: a detour to the north would come back near
    # the leg's second half; the south side stays clear of it.
    leg = [(-71.25, -29.90), (-71.24, -29.90), (-71.24, -29.88)]
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    samples = _drive(leg, start, 600.0, 5, None)
    moved, truth, _extra = _wrong_turn(
        samples, start, Point(-71.25, -29.90), 600.0, (0.1, 400.0, 600.0), 5, leg=leg
    )
    off = [s for s in moved if truth["started_at"] <= s.t <= truth["ended_at"]]
    assert off and all(s.lat < -29.90 for s in off)
    assert truth["leg_distance_min_m"] > 550
    nearest = min(_metres_from_line(s.lon, s.lat, leg) for s in off)
    assert round(nearest, 1) == truth["leg_distance_min_m"]
