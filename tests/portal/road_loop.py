"""A small real road network for console tests, stored through the same service the importers
use and routed on by the real graph: a one-way loop of two parallel streets, driven clockwise.

    (0,1) → (1,1) → (2,1) → (3,1)        north street (primary), eastbound
      ↑                       ↓
    (0,0) ← (1,0) ← (2,0) ← (3,0)        south street (residential), westbound; the hub at (0,0)

Grid units are 0.002° (~190 m east-west, ~220 m north-south), far from the demo city so no other
network covers these points.
"""

from __future__ import annotations

from django.contrib.gis.geos import Point

from tracking.roads.readers import EdgeRow, line_length_m
from tracking.roads.services import network_store

ORIGIN_LON, ORIGIN_LAT = -70.0, -30.0
UNIT_DEG = 0.002
NODES = {
    1: (0, 0),
    2: (1, 0),
    3: (2, 0),
    4: (3, 0),
    5: (0, 1),
    6: (1, 1),
    7: (2, 1),
    8: (3, 1),
}
ONE_WAY = [(1, 5), (5, 6), (6, 7), (7, 8), (8, 4), (4, 3), (3, 2), (2, 1)]


def lonlat(x: float, y: float) -> tuple[float, float]:
    return (ORIGIN_LON + x * UNIT_DEG, ORIGIN_LAT + y * UNIT_DEG)


def grid(x: float, y: float) -> Point:
    return Point(*lonlat(x, y), srid=4326)


def road_class(source: int, target: int) -> str:
    return "primary" if NODES[source][1] == 1 and NODES[target][1] == 1 else "residential"


def load_loop_network():
    nodes = {node: lonlat(*xy) for node, xy in NODES.items()}
    edges = []
    for number, (source, target) in enumerate(ONE_WAY, start=1):
        coords = [nodes[source], nodes[target]]
        edges.append(
            EdgeRow(
                source=source,
                target=target,
                length_m=line_length_m(coords),
                road_class=road_class(source, target),
                name=f"Loop {number}",
                osm_id=None,
                oneway=1,
                coords=coords,
            )
        )
    return network_store(
        slug="test-loop", name="Test loop", source="tests", nodes=nodes, edges=edges
    )
