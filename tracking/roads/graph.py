"""The road network as an in-memory graph: loaded once per process from PostGIS, rebuilt only
when the network is re-imported (its `loaded_at` changes).

Shortest paths and matrices run scipy's Dijkstra (C) on a sparse matrix of travel times;
points snap to the nearest node of the network's largest strongly connected component (so a
route never starts on an isolated one-way stub). Measured in bench/roads.py against pgRouting
being the alternative: a Dijkstra from one source over Coquimbo's ~15k nodes takes a few
milliseconds in process, with no SQL round trip.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from tracking.models import RoadEdge, RoadNetwork, RoadNode

EARTH_M_PER_DEG = 111_320.0


@dataclass
class Snap:
    index: int  # node index in the graph
    distance_m: float  # from the point to that node


class RoadGraph:
    def __init__(self, network: RoadNetwork):
        self.network_id = network.pk
        self.slug = network.slug
        self.loaded_at = network.loaded_at
        nodes = list(RoadNode.objects.filter(network=network).values_list("node_id", "location"))
        self.node_ids = np.array([n for n, _ in nodes], dtype=np.int64)
        self.lon = np.array([p.x for _, p in nodes])
        self.lat = np.array([p.y for _, p in nodes])
        self.index = {int(node_id): i for i, node_id in enumerate(self.node_ids)}
        self.cos_lat = math.cos(math.radians(float(np.mean(self.lat)))) if nodes else 1.0

        rows, cols, times, lengths = [], [], [], []
        # (from, to) → (coordinates from→to, length, seconds): for paths' geometry
        self.segments: dict[tuple[int, int], tuple[list, float, float]] = {}
        edges = RoadEdge.objects.filter(network=network).values_list(
            "source", "target", "length_m", "cost_s", "reverse_cost_s", "geom"
        )
        for source, target, length, cost, reverse, geom in edges:
            u, v = self.index[source], self.index[target]
            coords = list(geom.coords)
            for a, b, seconds, line in ((u, v, cost, coords), (v, u, reverse, coords[::-1])):
                if seconds < 0:
                    continue
                known = self.segments.get((a, b))
                if known is None or seconds < known[2]:
                    self.segments[(a, b)] = (line, length, seconds)
        for (a, b), (_line, length, seconds) in self.segments.items():
            rows.append(a)
            cols.append(b)
            times.append(max(seconds, 0.01))  # zero would read as "no edge"
            lengths.append(max(length, 0.01))
        size = len(self.node_ids)
        self._edges = (rows, cols, times, lengths)
        self.time_graph = csr_matrix((times, (rows, cols)), shape=(size, size))
        self.length_graph = csr_matrix((lengths, (rows, cols)), shape=(size, size))
        # Snap only to nodes from which everything (else in the component) is reachable.
        _count, labels = connected_components(self.time_graph, connection="strong")
        main = np.bincount(labels).argmax() if size else 0
        self.snappable = np.flatnonzero(labels == main)
        self.tree = cKDTree(self._xy(self.lon[self.snappable], self.lat[self.snappable]))

    def _xy(self, lon, lat):
        return np.column_stack(
            (np.asarray(lon) * EARTH_M_PER_DEG * self.cos_lat, np.asarray(lat) * EARTH_M_PER_DEG)
        )

    def snap(self, lons, lats) -> list[Snap]:
        distances, positions = self.tree.query(self._xy(lons, lats))
        return [
            Snap(int(self.snappable[p]), float(d))
            for d, p in zip(np.atleast_1d(distances), np.atleast_1d(positions), strict=True)
        ]

    def snap_near(self, lons, lats, *, k: int, within_m: float) -> list[list[Snap]]:
        """For each point, its `k` nearest snappable nodes within `within_m`, nearest first, and
        always at least the nearest however far: where a vehicle mid-street may join the
        network, ahead of it as well as behind (the nearest node alone is often behind, or at
        the wrong end of a one-way block)."""
        xy = self._xy(lons, lats)
        k = min(k, len(self.snappable))
        distances, positions = self.tree.query(xy, k=k)
        distances, positions = distances.reshape(len(xy), k), positions.reshape(len(xy), k)
        return [
            [
                Snap(int(self.snappable[p]), float(d))
                for rank, (d, p) in enumerate(zip(row_d, row_p, strict=True))
                if rank == 0 or d <= within_m
            ]
            for row_d, row_p in zip(distances, positions, strict=True)
        ]

    @cached_property
    def reverse_time_graph(self) -> csr_matrix:
        """Every edge turned around: a search from a target on it gives the times *to* it."""
        return self.time_graph.T.tocsr()

    def times_to(self, target: int, sources: list[int], *, bound_s: float) -> np.ndarray:
        """Fastest times from each of `sources` to `target`, in one search backwards from the
        target instead of one per source. Bounded first like `time_between`, and over the
        whole graph only when a source lies beyond the bound: exact either way."""
        times = dijkstra(self.reverse_time_graph, directed=True, indices=target, limit=bound_s)
        if np.isinf(times[sources]).any():
            times = dijkstra(self.reverse_time_graph, directed=True, indices=target)
        return times[sources]

    def times_from(self, sources: list[int]) -> np.ndarray:
        return dijkstra(self.time_graph, directed=True, indices=sources)

    @cached_property
    def core(self):
        """The contracted graph matrices run on (built on the first matrix: ~0.1 s)."""
        from tracking.roads.core import CoreGraph

        return CoreGraph(len(self.node_ids), *self._edges, self.snappable)

    def matrices(self, nodes: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Fastest times (s) and shortest lengths (m) between snapped `nodes`, n×n: the same
        as `times_from(nodes)[:, nodes]` and `lengths_from(nodes)[:, nodes]`, in half the
        time (tracking/roads/core.py)."""
        return self.core.matrices(nodes)

    def matrix(self, nodes: list[int], metric: str) -> np.ndarray:
        """One of `matrices`: "time" or "length"."""
        return self.core.matrix(nodes, metric)

    def time_between(self, source: int, target: int, *, bound_s: float) -> float:
        """Fastest time source → target. Searches only as far as `bound_s` first (a street leg
        between neighbouring stops settles in a few hundred nodes, not the whole city: ~0.4 ms
        instead of ~4 ms), and the whole graph only when the target lies beyond it. Exact
        either way: Dijkstra's distances within its limit are final."""
        if source == target:
            return 0.0
        seconds = float(
            dijkstra(self.time_graph, directed=True, indices=source, limit=bound_s)[target]
        )
        if math.isinf(seconds):
            seconds = float(self.times_from([source])[0][target])
        return seconds

    def lengths_from(self, sources: list[int]) -> np.ndarray:
        return dijkstra(self.length_graph, directed=True, indices=sources)

    def path(self, source: int, target: int, *, bound_s: float | None = None) -> list[int]:
        """Node indices of the fastest path (empty when there is none). With `bound_s`, the
        search stops that far first (as `time_between`): a leg between neighbouring stops
        settles a few hundred nodes instead of the whole city, and the path is the same."""
        if source == target:
            return [source]
        predecessors = None
        if bound_s is not None:
            _times, predecessors = dijkstra(
                self.time_graph,
                directed=True,
                indices=source,
                return_predecessors=True,
                limit=bound_s,
            )
        if predecessors is None or predecessors[target] < 0:
            _times, predecessors = dijkstra(
                self.time_graph, directed=True, indices=source, return_predecessors=True
            )
        if predecessors[target] < 0:
            return []
        nodes = [target]
        while nodes[-1] != source:
            nodes.append(int(predecessors[nodes[-1]]))
        return nodes[::-1]

    def path_geometry(self, nodes: list[int]) -> tuple[list, float, float]:
        """(coordinates, length m, seconds) along consecutive nodes."""
        coords, length, seconds = [], 0.0, 0.0
        for a, b in zip(nodes, nodes[1:], strict=False):
            line, meters, time_s = self.segments[(a, b)]
            coords.extend(line if not coords else line[1:])
            length += meters
            seconds += time_s
        if not coords and nodes:
            coords = [(float(self.lon[nodes[0]]), float(self.lat[nodes[0]]))]
        return coords, length, seconds


_graphs: dict[int, RoadGraph] = {}
_lock = threading.Lock()


def graph_for(network: RoadNetwork) -> RoadGraph:
    """The process's graph of `network`, built on first use and after a re-import."""
    with _lock:
        graph = _graphs.get(network.pk)
        if graph is None or graph.loaded_at != network.loaded_at:
            graph = RoadGraph(network)
            _graphs[network.pk] = graph
        return graph
