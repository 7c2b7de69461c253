"""Leg travel times for a batch of routes at once: `routing.leg_durations` for many point
sequences, giving the same seconds, with the per-call overhead paid once per batch.

Profiled on 1,000 routes of 10 stops, `leg_durations` called once per route spent most of its
time outside routing proper: the covering-network test (GEOS coordinate reads, 11 points and a
bounding box per route), and one KD-tree query per route. Here points are plain (x, y) floats,
network extents are read once per batch, every point of the batch snaps in one query, and the
stop-to-stop legs come from the same per-process cache as `leg_durations` (its keys, its bound,
its fallbacks), so a leg computed by either is reused by the other.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from tracking.roads import routing


class XY(NamedTuple):
    """A point as the routing helpers read it (`.x` longitude, `.y` latitude), without GEOS."""

    x: float
    y: float


def _covering(points: list[XY], extents: list[tuple]) -> object | None:
    """`routing.network_covering` on plain points, with the extents read once."""
    margin = routing.COVER_MARGIN_DEG
    for network, (xmin, ymin, xmax, ymax) in extents:
        if all(
            xmin - margin <= p.x <= xmax + margin and ymin - margin <= p.y <= ymax + margin
            for p in points
        ):
            return network
    return None


def _straight(a: XY, b: XY) -> float:
    return float(routing.straight_line_matrix([a, b]).durations_s[0][1])


def legs_many(sequences: list[list[XY]]) -> list[list[float]]:
    """For each sequence of points, the fastest travel time (s) of each consecutive leg, as
    `routing.leg_durations` gives it."""
    extents = [(n, n.bbox.extent) for n in routing._loaded_networks()]
    out: list[list[float] | None] = [None] * len(sequences)
    by_network: dict[int, tuple[object, list[int]]] = {}
    for index, points in enumerate(sequences):
        network = _covering(points, extents) if len(points) >= 2 else None
        if network is None:
            out[index] = [_straight(a, b) for a, b in zip(points, points[1:], strict=False)]
        else:
            by_network.setdefault(network.pk, (network, []))[1].append(index)
    if by_network:
        from tracking.roads.graph import graph_for  # scipy: loaded on first use only

        for network, indexes in by_network.values():
            graph = graph_for(network)
            flat = [p for i in indexes for p in sequences[i]]
            snaps = iter(graph.snap([p.x for p in flat], [p.y for p in flat]))
            for i in indexes:
                points = sequences[i]
                out[i] = _legs_on(graph, points, [next(snaps) for _ in points])
    return out  # type: ignore[return-value]


def _legs_on(graph, points: list[XY], snaps) -> list[float]:
    """`routing.leg_durations`'s loop, on snaps already made."""
    legs = []
    for a, b, snap_a, snap_b in zip(points, points[1:], snaps, snaps[1:], strict=False):
        key = (graph.slug, graph.loaded_at, snap_a.index, snap_b.index)
        seconds = routing._leg_cache.get(key)
        if seconds is None:
            bound = 120 + 3 * routing.point_distance_m(a, b) / routing.LEG_BOUND_SPEED_MPS
            seconds = graph.time_between(snap_a.index, snap_b.index, bound_s=bound)
            routing._leg_cache.set(key, seconds)
        if math.isinf(seconds):
            legs.append(_straight(a, b))
        else:
            legs.append(
                seconds + (snap_a.distance_m + snap_b.distance_m) / routing.ACCESS_SPEED_MPS
            )
    return legs
