"""Leg travel times for a batch of routes at once: `routing.leg_durations` for many point
sequences, giving the same seconds, with the per-call overhead paid once per batch.

Profiled on 1,000 routes of 10 stops, `leg_durations` called once per route spent most of its
time outside routing proper: the covering-network test (GEOS coordinate reads, 11 points and a
bounding box per route), and one KD-tree query per route. Here points are plain (x, y) floats,
network extents are read once per batch, every point of the batch snaps in one query, and the
stop-to-stop legs come from the same per-process cache as `leg_durations` (its keys, its bound,
its fallbacks), so a leg computed by either is reused by the other.

Stop-to-stop legs are also shared between processes through Redis (one hash per loaded network):
each worker process otherwise searched every leg of every route it saw once more (at 3,000
routes and four worker processes, ~120,000 bounded searches instead of ~30,000 after a
restart). The vehicle's own leg (from where it is now) changes with every ping and stays local.
Redis being away only costs the searches: the legs are computed here as before.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from django.conf import settings

from control_tower.redis_clients import sync_redis
from tracking.roads import routing

logger = logging.getLogger(__name__)

SHARED_LEGS_TTL_S = 7 * 24 * 3600  # stops come back (same addresses); a re-import changes the key
REDIS_TIMEOUT_S = 0.5


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


def shared_key(graph) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "ct"
    return f"{prefix}:eta:legs:{graph.slug}:{graph.loaded_at.timestamp():.6f}"


def _share(graph, sequences: list[list[XY]], indexes: list[int], snaps: list) -> None:
    """Fill this process's leg cache with the stop-to-stop legs other processes computed
    (one HMGET), compute the rest as `leg_durations` would and publish them (one HSET)."""
    wanted: dict[str, tuple] = {}  # "a:b" -> (cache key, the leg's points and snaps)
    for i, route_snaps in zip(indexes, snaps, strict=True):
        points = sequences[i]
        for j in range(1, len(points) - 1):
            snap_a, snap_b = route_snaps[j], route_snaps[j + 1]
            key = (graph.slug, graph.loaded_at, snap_a.index, snap_b.index)
            if snap_a.index != snap_b.index and routing._leg_cache.get(key) is None:
                leg = (points[j], points[j + 1], snap_a, snap_b)
                wanted.setdefault(f"{snap_a.index}:{snap_b.index}", (key, leg))
    if not wanted:
        return
    fields = list(wanted)
    try:
        client = sync_redis(timeout_s=REDIS_TIMEOUT_S)
        found = client.hmget(shared_key(graph), fields)
    except Exception:  # noqa: BLE001 - without Redis each process computes its own legs
        logger.warning("shared ETA legs unavailable; computing them here", exc_info=True)
        return
    publish = {}
    for field, seconds in zip(fields, found, strict=True):
        key, (a, b, snap_a, snap_b) = wanted[field]
        if seconds is not None:
            routing._leg_cache.set(key, float(seconds))
        else:
            # Through the one-route path's own loop: same bound, same cache entry.
            routing.legs_on(graph, [a, b], [snap_a, snap_b])
            publish[field] = repr(routing._leg_cache.get(key))
    if not publish:
        return
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hset(shared_key(graph), mapping=publish)
        pipe.expire(shared_key(graph), SHARED_LEGS_TTL_S)
        pipe.execute()
    except Exception:  # noqa: BLE001 - the next process computes them again
        logger.warning("could not share ETA legs", exc_info=True)


def legs_many(
    sequences: list[list[XY]], *, from_vehicle: bool = False, share: bool = True
) -> list[list[float]]:
    """For each sequence of points, the fastest travel time (s) of each consecutive leg, as
    `routing.leg_durations` gives it (`from_vehicle`: the first point is the vehicle, mid-street).
    With `share`, the legs between the points after the first (the stops) are shared with
    other processes."""
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
            snapped = iter(graph.snap([p.x for p in flat], [p.y for p in flat]))
            snaps = [[next(snapped) for _ in sequences[i]] for i in indexes]
            nears = [None] * len(indexes)
            if from_vehicle:  # every vehicle's candidate nodes in one query too
                nears = graph.snap_near(
                    [sequences[i][0].x for i in indexes],
                    [sequences[i][0].y for i in indexes],
                    k=routing.VEHICLE_JOINS_K,
                    within_m=routing.VEHICLE_JOINS_WITHIN_M,
                )
            if share:
                _share(graph, sequences, indexes, snaps)
            for i, route_snaps, near in zip(indexes, snaps, nears, strict=True):
                out[i] = routing.legs_on(graph, sequences[i], route_snaps, near=near)
    return out  # type: ignore[return-value]
