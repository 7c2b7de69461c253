"""Readers that turn road data into nodes and edges with travel costs.

Both produce the same shape: `nodes` {node id: (lon, lat)} and `edges` (source, target,
length in metres, road class, name, OSM id, one-way flag, [(lon, lat), …] from source to
target). Costs are computed by `edge_costs` from configurable speeds per road class.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tracking.geo import distance_m

# Road classes a delivery vehicle drives on (OpenStreetMap `highway` values).
DRIVABLE = {
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "service",
    "road",
}


@dataclass(frozen=True)
class EdgeRow:
    source: int
    target: int
    length_m: float
    road_class: str
    name: str
    osm_id: int | None
    oneway: int  # 0 both ways, 1 source→target only, -1 target→source only
    coords: list[tuple[float, float]]


def line_length_m(coords: list[tuple[float, float]]) -> float:
    return sum(distance_m(a[1], a[0], b[1], b[0]) for a, b in zip(coords, coords[1:], strict=False))


def edge_costs(edge: EdgeRow, speeds_kmh: dict[str, float]) -> tuple[float, float]:
    """(cost_s, reverse_cost_s) with -1 for a direction that may not be driven."""
    base = edge.road_class.removesuffix("_link")
    speed = speeds_kmh.get(base, speeds_kmh.get("default", 25)) / 3.6
    seconds = edge.length_m / speed
    forward = seconds if edge.oneway in (0, 1) else -1.0
    backward = seconds if edge.oneway in (0, -1) else -1.0
    return forward, backward


# ---------------------------------------------------------------------------------------------
# AequilibraE project database (SpatiaLite)
# ---------------------------------------------------------------------------------------------


def spatialite_coords(blob: bytes) -> list[tuple[float, float]]:
    """Points of a SpatiaLite POINT or LINESTRING blob: 0x00, byte order, SRID, MBR (4
    doubles), 0x7C, class type, then the coordinates; 0xFE closes it."""
    if not blob or blob[0] != 0x00 or blob[38] != 0x7C:
        raise ValueError("not a SpatiaLite geometry blob")
    order = "<" if blob[1] == 0x01 else ">"
    (kind,) = struct.unpack_from(order + "i", blob, 39)
    if kind == 1:
        return [struct.unpack_from(order + "dd", blob, 43)]
    if kind == 2:
        (count,) = struct.unpack_from(order + "i", blob, 43)
        return [struct.unpack_from(order + "dd", blob, 47 + 16 * i) for i in range(count)]
    raise ValueError(f"unsupported SpatiaLite geometry class {kind}")


def read_aequilibrae(path: Path) -> tuple[dict[int, tuple[float, float]], list[EdgeRow]]:
    """Links usable by cars (mode `c`), not the virtual centroid connectors.

    sqlite3 here only *reads the source data file*: AequilibraE ships its network as a
    SpatiaLite (SQLite) file. Everything is stored in and served from PostGIS."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        nodes = {
            node_id: spatialite_coords(blob)[0]
            for node_id, blob in connection.execute("SELECT node_id, geometry FROM nodes")
        }
        edges = []
        rows = connection.execute(
            "SELECT a_node, b_node, direction, distance, modes, link_type, name, osm_id, "
            "geometry FROM links"
        )
        for a, b, direction, distance, modes, link_type, name, osm_id, blob in rows:
            if "c" not in (modes or "") or link_type == "centroid_connector" or a == b:
                continue
            coords = spatialite_coords(blob)
            edges.append(
                EdgeRow(
                    source=a,
                    target=b,
                    length_m=float(distance) if distance else line_length_m(coords),
                    road_class=link_type or "default",
                    name=(name or "")[:200],
                    osm_id=int(osm_id) if osm_id else None,
                    oneway=int(direction or 0),
                    coords=coords,
                )
            )
    finally:
        connection.close()
    used = {e.source for e in edges} | {e.target for e in edges}
    return {k: v for k, v in nodes.items() if k in used}, edges


# ---------------------------------------------------------------------------------------------
# OpenStreetMap extract (.osm.pbf / .osm), with pyosmium
# ---------------------------------------------------------------------------------------------


def _oneway(tags) -> int:
    value = tags.get("oneway", "")
    if value in ("yes", "true", "1"):
        return 1
    if value == "-1":
        return -1
    if tags.get("junction") in ("roundabout", "circular") or tags.get("highway") == "motorway":
        return 0 if value == "no" else 1
    return 0


def read_osm(path: Path) -> tuple[dict[int, tuple[float, float]], list[EdgeRow]]:
    """Drivable ways split into edges at every node shared with another way (intersections)."""
    import osmium

    ways = []
    for way in (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
    ):
        tags = way.tags
        if tags.get("highway") not in DRIVABLE or tags.get("access") in ("no", "private"):
            continue
        if tags.get("area") == "yes" or tags.get("motor_vehicle") == "no":
            continue
        points = [(n.ref, n.lon, n.lat) for n in way.nodes if n.location.valid()]
        if len(points) < 2:
            continue
        ways.append((way.id, tags.get("highway"), tags.get("name", ""), _oneway(tags), points))
    uses: dict[int, int] = {}
    for *_info, points in ways:
        for ref, _lon, _lat in points:
            uses[ref] = uses.get(ref, 0) + 1
    nodes: dict[int, tuple[float, float]] = {}
    edges: list[EdgeRow] = []
    for osm_id, highway, name, oneway, points in ways:
        for piece in _split(points, uses):
            coords = [(lon, lat) for _ref, lon, lat in piece]
            source, target = piece[0][0], piece[-1][0]
            if source == target:
                continue
            nodes[source] = coords[0]
            nodes[target] = coords[-1]
            edges.append(
                EdgeRow(
                    source,
                    target,
                    line_length_m(coords),
                    highway,
                    name[:200],
                    osm_id,
                    oneway,
                    coords,
                )
            )
    return nodes, edges


def _split(points, uses) -> Iterator[list]:
    """Pieces of a way between its ends and the nodes other ways share."""
    start = 0
    for index in range(1, len(points)):
        if index == len(points) - 1 or uses[points[index][0]] > 1:
            yield points[start : index + 1]
            start = index
