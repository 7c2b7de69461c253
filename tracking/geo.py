"""Distances on the Earth, named once: every module that needs a distance between two positions
imports it from here, so the radius and the argument order cannot drift apart."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.gis.geos import Point

# Mean Earth radius (IUGG). A sphere is within 0.5 % of the WGS 84 spheroid, which is far below
# the error of a phone fix or of a straight line standing in for a road.
EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres between two latitude/longitude pairs."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def point_distance_m(a: Point, b: Point) -> float:
    """`distance_m` for two SRID 4326 points (x is the longitude, y the latitude)."""
    return distance_m(a.y, a.x, b.y, b.x)
