"""Travel times and paths between points: on the loaded road network when there is one,
else straight lines at a planning speed (so planning works before any network is loaded).

Interface used by planning, ETAs and the simulator:
- `travel_matrix(points) -> TravelMatrix` (seconds and metres, n×n);
- `route_path(points) -> Path` (geometry through the points in order, length, duration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.contrib.gis.geos import LineString, Point

STRAIGHT_LINE_DETOUR = 1.3  # streets are longer than the crow flies
STRAIGHT_LINE_SPEED_MPS = 25 / 3.6


@dataclass(frozen=True)
class TravelMatrix:
    durations_s: list[list[int]]
    distances_m: list[list[int]]
    source: str  # "road:<network slug>" or "straight_line"


@dataclass(frozen=True)
class Path:
    geometry: LineString
    length_m: float
    duration_s: float
    source: str


def haversine_m(a: Point, b: Point) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a.y, a.x, b.y, b.x))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(
        (lon2 - lon1) / 2
    ) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(h)))


def straight_line_matrix(points: list[Point]) -> TravelMatrix:
    n = len(points)
    distances = [[0] * n for _ in range(n)]
    durations = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j:
                meters = haversine_m(points[i], points[j]) * STRAIGHT_LINE_DETOUR
                distances[i][j] = round(meters)
                durations[i][j] = round(meters / STRAIGHT_LINE_SPEED_MPS)
    return TravelMatrix(durations, distances, "straight_line")


def travel_matrix(points: list[Point]) -> TravelMatrix:
    return straight_line_matrix(points)


def route_path(points: list[Point]) -> Path:
    length = sum(
        haversine_m(a, b) * STRAIGHT_LINE_DETOUR for a, b in zip(points, points[1:], strict=False)
    )
    return Path(
        geometry=LineString([(p.x, p.y) for p in points], srid=4326),
        length_m=length,
        duration_s=length / STRAIGHT_LINE_SPEED_MPS,
        source="straight_line",
    )
