"""The road graph with its degree-2 chains contracted: what travel-time matrices run on.

Almost half of Coquimbo's nodes (6.9k of 15.6k) only join two street segments: a Dijkstra
settles them one by one although no path can turn there. Replacing each chain of such nodes
by one edge between the junctions at its ends (the sum of its segments, per direction), and
leaving out dead ends that lead nowhere, halves the graph and every search on it. It stays
exact: a fastest (or shortest) path between two junctions crosses a chain whole or not at all,
and a dead end is only ever entered to come back out. The points of a query are often on a
chain, so for each query the chains holding one are split at those nodes again.

Only the graph's largest strongly connected component is kept: points snap only to it, and a
fastest path between two of its nodes never leaves it (every node on it reaches both ends).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra


class CoreGraph:
    def __init__(self, size: int, rows, cols, times, lengths, component) -> None:
        """`size` nodes; `rows`, `cols`, `times`, `lengths`: the directed edges of the whole
        graph (one per ordered pair, weights > 0); `component`: the node indices of its largest
        strongly connected component."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        times, lengths = np.asarray(times, dtype=float), np.asarray(lengths, dtype=float)
        inside = np.zeros(size, dtype=bool)
        inside[np.asarray(component, dtype=np.int64)] = True
        keep = inside[rows] & inside[cols] & (rows != cols)  # a loop never shortens a path
        rows, cols, times, lengths = rows[keep], cols[keep], times[keep], lengths[keep]
        weight = {
            (int(a), int(b)): (float(t), float(m))
            for a, b, t, m in zip(rows, cols, times, lengths, strict=True)
        }
        pairs = np.unique(np.column_stack((np.minimum(rows, cols), np.maximum(rows, cols))), axis=0)
        trunk, self.tree_of, self.tree_root = _peel_dead_ends(size, pairs, inside)
        self.trees = [([], [], [], []) for _ in range(len(self.tree_root))]
        in_trunk = pairs[trunk[pairs[:, 0]] & trunk[pairs[:, 1]]]
        degree = np.bincount(in_trunk.ravel(), minlength=size)
        neighbours: dict[int, list[int]] = {}
        for a, b in in_trunk.tolist():
            if degree[a] == 2:
                neighbours.setdefault(a, []).append(b)
            if degree[b] == 2:
                neighbours.setdefault(b, []).append(a)
        through = trunk & (degree == 2)
        chains = self._chains(through, neighbours)
        core = trunk & ~through
        for chain in chains:  # a ring of degree-2 nodes alone: its first node turns junction
            core[chain[0]] = core[chain[-1]] = True

        self.core_count = int(core.sum())
        self.reduced_index = np.full(size, -1, dtype=np.int64)
        self.reduced_index[core] = np.arange(self.core_count)
        # Per node: the chain it lies inside (-1 for junctions) and its position there.
        self.chain_of = np.full(size, -1, dtype=np.int64)
        self.position = np.zeros(size, dtype=np.int64)
        self.chains: list[tuple[np.ndarray, np.ndarray]] = []  # (nodes, weights [4, len-1])
        base: list[list] = [[], [], [], [], []]  # from, to, seconds, metres, chain

        for a, b, seconds, metres in zip(
            rows.tolist(), cols.tolist(), times.tolist(), lengths.tolist(), strict=True
        ):
            tree = max(self.tree_of[a], self.tree_of[b])
            if tree >= 0:
                for column, value in zip(self.trees[tree], (a, b, seconds, metres), strict=True):
                    column.append(value)
            elif core[a] and core[b]:
                for column, value in zip(base, (a, b, seconds, metres, -1), strict=True):
                    column.append(value)
        for number, chain in enumerate(chains):
            nodes = np.array(chain, dtype=np.int64)
            inf = (np.inf, np.inf)
            forward = [weight.get((u, v), inf) for u, v in zip(chain, chain[1:], strict=False)]
            backward = [weight.get((v, u), inf) for u, v in zip(chain, chain[1:], strict=False)]
            weights = np.array([*zip(*forward, strict=True), *zip(*backward, strict=True)])
            self.chains.append((nodes, weights))
            inner = nodes[1:-1]
            self.chain_of[inner] = number
            self.position[inner] = np.arange(1, len(nodes) - 1)
            for seconds, metres, a, b in (
                (weights[0].sum(), weights[1].sum(), chain[0], chain[-1]),
                (weights[2].sum(), weights[3].sum(), chain[-1], chain[0]),
            ):
                if a != b and np.isfinite(seconds):
                    for column, value in zip(base, (a, b, seconds, metres, number), strict=True):
                        column.append(value)
        self.base_from, self.base_to = np.array(base[0], np.int64), np.array(base[1], np.int64)
        self.base_seconds, self.base_metres = np.array(base[2]), np.array(base[3])
        self.base_chain = np.array(base[4], np.int64)
        self.trees = [
            (np.array(a, np.int64), np.array(b, np.int64), np.array(t), np.array(m))
            for a, b, t, m in self.trees
        ]

    @staticmethod
    def _chains(through: np.ndarray, neighbours: dict[int, list[int]]) -> list[list[int]]:
        """Maximal runs of degree-2 nodes, each with the junction at either end."""
        seen: set[int] = set()
        chains = []
        for start in np.flatnonzero(through).tolist():
            if start in seen:
                continue
            seen.add(start)
            halves = []
            for first in neighbours[start]:
                previous, here, half = start, first, []
                while through[here] and here != start:
                    seen.add(here)
                    half.append(here)
                    ahead = neighbours[here]
                    previous, here = here, ahead[1] if ahead[0] == previous else ahead[0]
                half.append(here)
                halves.append(half)
            if halves[0][-1] == start:  # a ring: no junction on it
                chains.append([start, *halves[0]])
            else:
                chains.append([*halves[0][::-1], start, *halves[1]])
        return chains

    def matrices(self, nodes: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Fastest times (s) and shortest lengths (m) between `nodes` (indices of the whole
        graph, inside its main component), as `len(nodes)`² arrays: equal to Dijkstra's on the
        whole graph."""
        return self.matrix(nodes, "time"), self.matrix(nodes, "length")

    def matrix(self, nodes: list[int], metric: str) -> np.ndarray:
        """One of `matrices`: "time" (s) or "length" (m)."""
        wanted = np.asarray(nodes, dtype=np.int64)
        points = np.unique(wanted)
        trees = np.unique(self.tree_of[points][self.tree_of[points] >= 0])
        # A point in a dead-end tree is reached through the tree's root: split the trunk there.
        splits = np.union1d(points[self.tree_of[points] < 0], self.tree_root[trees])
        on_chain = splits[self.chain_of[splits] >= 0]
        tree_nodes = np.unique(
            np.concatenate([np.empty(0, np.int64)] + [self.trees[t][0] for t in trees.tolist()])
        )
        tree_nodes = tree_nodes[self.tree_of[tree_nodes] >= 0]
        index = self.reduced_index.copy()
        extra = np.concatenate((on_chain, tree_nodes))
        index[extra] = self.core_count + np.arange(len(extra))
        split = np.unique(self.chain_of[on_chain])
        keep = ~np.isin(self.base_chain, split)
        parts = [
            (
                index[self.base_from[keep]],
                index[self.base_to[keep]],
                self.base_seconds[keep],
                self.base_metres[keep],
            )
        ]
        for number in split.tolist():
            chain, weights = self.chains[number]
            cuts = np.unique([0, *self.position[on_chain[self.chain_of[on_chain] == number]]])
            cuts = np.append(cuts, len(chain) - 1)
            sums = np.add.reduceat(weights, cuts[:-1], axis=1)  # per stretch between cuts
            ends = index[chain[cuts]]
            parts.append((ends[:-1], ends[1:], sums[0], sums[1]))
            parts.append((ends[1:], ends[:-1], sums[2], sums[3]))
        for tree in trees.tolist():
            sources, targets, seconds, metres = self.trees[tree]
            parts.append((index[sources], index[targets], seconds, metres))
        sources, targets, seconds, metres = (np.concatenate(c) for c in zip(*parts, strict=True))
        weights = {"time": seconds, "length": metres}[metric]
        size = self.core_count + len(extra)
        ask = index[wanted]
        found = dijkstra(_graph(sources, targets, weights, size), directed=True, indices=ask)
        return found[:, ask]


def _peel_dead_ends(size: int, pairs: np.ndarray, inside: np.ndarray):
    """Split the component into its trunk (the 2-core: what remains once dead ends are peeled
    off, repeatedly) and the trees hanging from it. Returns (trunk mask, per node its tree or
    -1, per tree the trunk node it hangs from). No path between two trunk nodes enters a tree."""
    graph = csr_matrix(
        (np.ones(2 * len(pairs)), (pairs.ravel(), pairs[:, ::-1].ravel())), shape=(size, size)
    )
    degree = np.diff(graph.indptr).astype(np.int64)
    trunk = inside.copy()
    leaves = list(np.flatnonzero(trunk & (degree <= 1)))
    while leaves:
        leaf = leaves.pop()
        if not trunk[leaf]:
            continue
        trunk[leaf] = False
        for other in graph.indices[graph.indptr[leaf] : graph.indptr[leaf + 1]].tolist():
            if trunk[other]:
                degree[other] -= 1
                if degree[other] <= 1:
                    leaves.append(other)
    tree_of = np.full(size, -1, dtype=np.int64)
    if not trunk.any():  # the whole component is a tree: one tree, hung from any node
        trunk[np.flatnonzero(inside)[:1]] = True
    peeled = inside & ~trunk
    from scipy.sparse.csgraph import connected_components

    _count, labels = connected_components(graph[peeled][:, peeled], directed=False)
    tree_of[peeled] = labels
    roots = np.full(int(labels.max(initial=-1)) + 1, -1, dtype=np.int64)
    for a, b in pairs.tolist():
        if trunk[a] and tree_of[b] >= 0:
            roots[tree_of[b]] = a
        elif trunk[b] and tree_of[a] >= 0:
            roots[tree_of[a]] = b
    return trunk, tree_of, roots


def _graph(sources, targets, weights, size: int) -> csr_matrix:
    """A sparse graph keeping the lightest of parallel edges (a junction pair joined by a
    street and by a chain; scipy would add them up) and no missing direction."""
    present = np.isfinite(weights) & (sources != targets)
    sources, targets, weights = sources[present], targets[present], weights[present]
    key = sources * size + targets
    order = np.argsort(key, kind="stable")
    key, weights = key[order], weights[order]
    unique, starts = np.unique(key, return_index=True)
    lightest = np.minimum.reduceat(weights, starts) if len(starts) else weights
    return csr_matrix((lightest, (unique // size, unique % size)), shape=(size, size))
