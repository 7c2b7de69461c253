"""Travel times and paths between points: on the loaded road network when there is one,
else straight lines at a planning speed (so planning works before any network is loaded).

Interface used by planning, ETAs and the simulator:
- `travel_matrix(points) -> TravelMatrix` (seconds and metres, n×n);
- `route_path(points) -> Path` (geometry through the points in order, length, duration);
- `leg_durations(points)` (consecutive legs only) and `vehicle_leg(here, stop)` (from a vehicle
  mid-street to its next stop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from django.contrib.gis.geos import LineString, Point

from control_tower.caches import LocalCache
from tracking.geo import point_distance_m
from tracking.models import RoadNetwork

STRAIGHT_LINE_DETOUR = 1.3  # streets are longer than the crow flies
STRAIGHT_LINE_SPEED_MPS = 25 / 3.6


class TravelMatrix:
    """Durations (s) and distances (m), n×n, and where they come from ("road:<network slug>"
    or "straight_line"). Distances may be given as a function, run on first use: most callers
    (ETAs, reassigning) only read durations, and on a road network the distances are a second
    search of the same cost."""

    def __init__(self, durations_s: list[list[int]], distances_m, source: str):
        self.durations_s = durations_s
        self._distances = distances_m
        self.source = source

    @property
    def distances_m(self) -> list[list[int]]:
        if callable(self._distances):
            self._distances = self._distances()
        return self._distances


@dataclass(frozen=True)
class Path:
    geometry: LineString
    length_m: float
    duration_s: float
    source: str


def straight_line_matrix(points: list[Point]) -> TravelMatrix:
    n = len(points)
    distances = [[0] * n for _ in range(n)]
    durations = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j:
                meters = point_distance_m(points[i], points[j]) * STRAIGHT_LINE_DETOUR
                distances[i][j] = round(meters)
                durations[i][j] = round(meters / STRAIGHT_LINE_SPEED_MPS)
    return TravelMatrix(durations, distances, "straight_line")


def straight_line_path(points: list[Point]) -> Path:
    length = sum(
        point_distance_m(a, b) * STRAIGHT_LINE_DETOUR
        for a, b in zip(points, points[1:], strict=False)
    )
    return Path(
        geometry=LineString([(p.x, p.y) for p in points], srid=4326),
        length_m=length,
        duration_s=length / STRAIGHT_LINE_SPEED_MPS,
        source="straight_line",
    )


# From a point to the street it snapped to (a driveway, a courtyard): slow.
ACCESS_SPEED_MPS = 10 / 3.6
COVER_MARGIN_DEG = 0.01  # ~1 km around a network's bounding box still counts as inside


# Networks are loaded a few times a year; routing asks on every ETA recompute. Per process, the
# list is read again after this many seconds (a re-import also changes `loaded_at`, which the
# graph cache checks).
NETWORKS_CACHE_S = 30.0
_networks = LocalCache(maxsize=1, ttl_s=NETWORKS_CACHE_S)


def _loaded_networks() -> list:
    return _networks.get_or_set(
        "loaded",
        lambda: list(RoadNetwork.objects.filter(loaded_at__isnull=False, bbox__isnull=False)),
    )


def forget_networks() -> None:
    """After loading a network (and in tests): the next routing call reads the list again."""
    _networks.clear()


def network_covering(points: list[Point]):
    """The loaded road network whose area contains every point, or None."""
    for network in _loaded_networks():
        xmin, ymin, xmax, ymax = network.bbox.extent
        if all(
            xmin - COVER_MARGIN_DEG <= p.x <= xmax + COVER_MARGIN_DEG
            and ymin - COVER_MARGIN_DEG <= p.y <= ymax + COVER_MARGIN_DEG
            for p in points
        ):
            return network
    return None


def _graph(points: list[Point]):
    network = network_covering(points) if points else None
    if network is None:
        return None
    # Loaded on first use: scipy takes about a second to import, and most processes (web workers
    # without a road network, management commands) never route on a graph.
    from tracking.roads.graph import graph_for

    return graph_for(network)


def travel_matrix(points: list[Point]) -> TravelMatrix:
    """Fastest-path durations and shortest-path distances between all points, on the road
    network covering them (snapping each point to its nearest street node), else straight
    lines. A pair the network cannot connect falls back to the straight line."""
    graph = _graph(points)
    if graph is None:
        return straight_line_matrix(points)
    import numpy as np

    snaps = graph.snap([p.x for p in points], [p.y for p in points])
    nodes = [s.index for s in snaps]
    access = np.array([s.distance_m for s in snaps])
    access_pairs = access[:, None] + access[None, :]

    def on_roads(metric: str, access_m, fallback) -> list[list[int]]:
        found = graph.matrix(nodes, metric)
        values = found + access_m
        unreachable = np.isinf(found)
        if unreachable.any():
            values[unreachable] = np.array(fallback())[unreachable]
        np.fill_diagonal(values, 0)
        return np.rint(values).astype(int).tolist()

    durations = on_roads(
        "time",
        access_pairs / ACCESS_SPEED_MPS,
        lambda: straight_line_matrix(points).durations_s,
    )
    return TravelMatrix(
        durations,
        lambda: on_roads("length", access_pairs, lambda: straight_line_matrix(points).distances_m),
        f"road:{graph.slug}",
    )


def route_path(points: list[Point], *, legs_s: list[float] | None = None) -> Path:
    """The fastest path through the points in order, on the road network covering them (from
    each point to its street and back), else straight lines. `legs_s`: each leg's travel time
    when the caller knows it (from `travel_matrix`): each path search stops there, not at the
    generous default bound (the path is the same)."""
    graph = _graph(points)
    if graph is None or len(points) < 2:
        return straight_line_path(points)
    snaps = graph.snap([p.x for p in points], [p.y for p in points])
    coords: list[tuple[float, float]] = []
    length = seconds = 0.0
    for number, ((a, b), (snap_a, snap_b)) in enumerate(
        zip(
            zip(points, points[1:], strict=False),
            zip(snaps, snaps[1:], strict=False),
            strict=True,
        )
    ):
        # A matrix time is rounded and includes the access legs: +1 s keeps it an upper bound.
        bound = legs_s[number] + 1 if legs_s is not None else _leg_bound_s(a, b)
        nodes = graph.path(snap_a.index, snap_b.index, bound_s=bound)
        if not nodes:
            leg = straight_line_path([a, b])
            coords.extend(leg.geometry.coords)
            length += leg.length_m
            seconds += leg.duration_s
            continue
        street, meters, time_s = graph.path_geometry(nodes)
        access = snap_a.distance_m + snap_b.distance_m
        coords.extend([(a.x, a.y), *street, (b.x, b.y)])
        length += meters + access
        seconds += time_s + access / ACCESS_SPEED_MPS
    deduped = [c for i, c in enumerate(coords) if i == 0 or c != coords[i - 1]]
    return Path(
        geometry=LineString(deduped, srid=4326),
        length_m=length,
        duration_s=seconds,
        source=f"road:{graph.slug}",
    )


# Stop-to-stop legs do not change between two ETA recomputes of a route: remember them.
_leg_cache = LocalCache(maxsize=200_000, ttl_s=None)
LEG_BOUND_SPEED_MPS = 20 / 3.6


def _leg_bound_s(a: Point, b: Point) -> float:
    """How far a search for the leg a → b looks first (the whole graph after that): a generous
    bound, three times the crow-flies distance at a slow urban speed."""
    return 120 + 3 * point_distance_m(a, b) / LEG_BOUND_SPEED_MPS


# The vehicle's own leg starts mid-street: it joins the network at whichever of the nearest
# nodes gets it to its next stop first (ahead of it, or behind when it must turn), driving there.
VEHICLE_ACCESS_MPS = 20 / 3.6
VEHICLE_JOINS_K = 4
VEHICLE_JOINS_WITHIN_M = 150.0


class VehicleLeg(NamedTuple):
    seconds: float
    length_m: float  # along the fastest path, with the access at both ends


def _vehicle_leg_on(graph, here, stop, near: list, stop_snap) -> tuple[float, object] | None:
    """(seconds, the node snap it joins at) from `here` to `stop`: the best of the candidate
    nodes `near` (distance at `VEHICLE_ACCESS_MPS` plus the fastest time from there), plus the
    stop's own access as on any leg. None when the network cannot connect them.

    The road times are remembered per (candidates, stop node), as the stop-to-stop legs per
    node pair: a vehicle standing still, or pinging again before it passed a node, asks for
    the same nodes again."""
    sources = tuple(s.index for s in near)
    key = (graph.slug, graph.loaded_at, sources, stop_snap.index)
    times = _leg_cache.get(key)
    if times is None:
        bound = _leg_bound_s(here, stop)
        times = tuple(graph.times_to(stop_snap.index, list(sources), bound_s=bound).tolist())
        _leg_cache.set(key, times)
    seconds, joins = min(
        (
            (snap.distance_m / VEHICLE_ACCESS_MPS + road_s, snap)
            for snap, road_s in zip(near, times, strict=True)
        ),
        key=lambda option: option[0],
    )
    if math.isinf(seconds):
        return None
    return seconds + stop_snap.distance_m / ACCESS_SPEED_MPS, joins


def _near_vehicle(graph, here) -> list:
    [near] = graph.snap_near([here.x], [here.y], k=VEHICLE_JOINS_K, within_m=VEHICLE_JOINS_WITHIN_M)
    return near


def vehicle_leg(here: Point, stop: Point) -> VehicleLeg:
    """The vehicle's own leg, from where it is (mid-street) to its next stop: the seconds the
    ETA engine uses for it (`leg_durations(..., from_vehicle=True)`), and the length of that
    path. Straight lines off the network, as every leg."""
    graph = _graph([here, stop])
    found = None
    if graph is not None:
        [stop_snap] = graph.snap([stop.x], [stop.y])
        found = _vehicle_leg_on(graph, here, stop, _near_vehicle(graph, here), stop_snap)
    if found is None:
        line = straight_line_matrix([here, stop])
        return VehicleLeg(float(line.durations_s[0][1]), float(line.distances_m[0][1]))
    seconds, joins = found
    nodes = graph.path(joins.index, stop_snap.index, bound_s=seconds + 1)
    _coords, meters, _time_s = graph.path_geometry(nodes)
    return VehicleLeg(seconds, meters + joins.distance_m + stop_snap.distance_m)


def legs_on(graph, points: list, snaps: list, *, near: list | None = None) -> list[float]:
    """Each consecutive leg's seconds on `graph`, for points already snapped (any objects
    with `.x` and `.y`). With `near` (the first point's candidate nodes, `snap_near`), the
    first point is the vehicle and its leg is `_vehicle_leg_on`'s."""
    legs = []
    for number, (a, b, snap_a, snap_b) in enumerate(
        zip(points, points[1:], snaps, snaps[1:], strict=False)
    ):
        if number == 0 and near is not None:
            found = _vehicle_leg_on(graph, a, b, near, snap_b)
            legs.append(
                float(straight_line_matrix([a, b]).durations_s[0][1]) if found is None else found[0]
            )
            continue
        key = (graph.slug, graph.loaded_at, snap_a.index, snap_b.index)
        seconds = _leg_cache.get(key)
        if seconds is None:
            seconds = graph.time_between(snap_a.index, snap_b.index, bound_s=_leg_bound_s(a, b))
            _leg_cache.set(key, seconds)
        if math.isinf(seconds):
            legs.append(float(straight_line_matrix([a, b]).durations_s[0][1]))
        else:
            legs.append(seconds + (snap_a.distance_m + snap_b.distance_m) / ACCESS_SPEED_MPS)
    return legs


def leg_durations(points: list[Point], *, from_vehicle: bool = False) -> list[float]:
    """Fastest travel time (s) of each consecutive leg points[i] → points[i+1]: what an ETA
    needs (one Dijkstra per leg not seen before, instead of a full matrix). `from_vehicle`:
    the first point is a vehicle on the street (its leg is `vehicle_leg`'s seconds); else
    every point is a place (a stop, a hub) reached from its nearest street node."""
    if len(points) < 2:
        return []
    graph = _graph(points)
    if graph is None:
        return [
            straight_line_matrix([a, b]).durations_s[0][1]
            for a, b in zip(points, points[1:], strict=False)
        ]
    snaps = graph.snap([p.x for p in points], [p.y for p in points])
    near = _near_vehicle(graph, points[0]) if from_vehicle else None
    return legs_on(graph, points, snaps, near=near)
