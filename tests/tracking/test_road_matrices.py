"""Travel-time matrices on the contracted graph (tracking/roads/core.py) equal Dijkstra on the
whole graph: on the real Coquimbo network (random points, points on chains and in dead ends,
repeated points) and on small hand-made graphs with the awkward shapes (one-way chains, a
street and a chain between the same junctions, rings, trees, a graph that is all tree)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from tracking.models import RoadNetwork
from tracking.roads.core import CoreGraph
from tracking.roads.graph import graph_for
from tracking.roads.routing import ACCESS_SPEED_MPS, travel_matrix


@pytest.fixture
def coquimbo(db):
    call_command("load_road_network", "--demo", "coquimbo", "--if-missing", "--no-progress")
    return graph_for(RoadNetwork.objects.get(slug="coquimbo"))


def whole(graph, nodes):
    return graph.times_from(nodes)[:, nodes], graph.lengths_from(nodes)[:, nodes]


def assert_same(got, expected):
    for new, old in zip(got, expected, strict=True):
        np.testing.assert_allclose(new, old, rtol=1e-9, atol=1e-6)
        assert np.array_equal(np.rint(new), np.rint(old))  # what travel_matrix returns


def test_the_contracted_graph_is_much_smaller(coquimbo):
    core = coquimbo.core
    assert core.core_count < 0.45 * len(coquimbo.snappable)
    assert (core.chain_of >= 0).sum() > 5000 and (core.tree_of >= 0).sum() > 1000


def test_matrices_equal_the_whole_graph_on_coquimbo(coquimbo):
    core = coquimbo.core
    rng = np.random.default_rng(19)
    on_chain = np.flatnonzero(core.chain_of >= 0)
    in_tree = np.flatnonzero(core.tree_of >= 0)
    junction = np.flatnonzero(core.reduced_index >= 0)
    long_chain = next(nodes for nodes, _ in core.chains if len(nodes) > 6)
    big_tree = np.flatnonzero(core.tree_of == np.bincount(core.tree_of[in_tree]).argmax())
    for _ in range(3):
        nodes = [
            *rng.choice(coquimbo.snappable, 40),
            *rng.choice(on_chain, 20),
            *rng.choice(in_tree, 20),
            *rng.choice(junction, 10),
            *long_chain[[1, 3, -2]],  # several points on one chain
            *big_tree[:3],  # several in one tree
        ]
        nodes = [int(n) for n in nodes] + [int(nodes[0]), int(nodes[50])]  # repeated points
        assert_same(coquimbo.matrices(nodes), whole(coquimbo, nodes))


def test_travel_matrix_is_unchanged_on_random_points(coquimbo):
    rng = random.Random(7)
    points = [
        Point(rng.uniform(-71.34, -71.22), rng.uniform(-29.97, -29.88), srid=4326)
        for _ in range(60)
    ]
    matrix = travel_matrix(points)
    # What travel_matrix computed before the contracted graph, from the whole graph.
    snaps = coquimbo.snap([p.x for p in points], [p.y for p in points])
    nodes = [s.index for s in snaps]
    times, lengths = whole(coquimbo, nodes)
    access = np.array([s.distance_m for s in snaps])
    pairs = access[:, None] + access[None, :]
    durations, distances = times + pairs / ACCESS_SPEED_MPS, lengths + pairs
    np.fill_diagonal(durations, 0)
    np.fill_diagonal(distances, 0)
    assert matrix.source == "road:coquimbo"
    assert matrix.durations_s == np.rint(durations).astype(int).tolist()
    assert matrix.distances_m == np.rint(distances).astype(int).tolist()


def small(edges: list[tuple[int, int, float]], size: int):
    """A CoreGraph and the whole graph (lengths twice the times, plus one, so the two metrics
    pick different parallel edges)."""
    rows = [a for a, _, _ in edges]
    cols = [b for _, b, _ in edges]
    times = [t for _, _, t in edges]
    lengths = [2 * t + 1 for _, _, t in edges]
    full_t = csr_matrix((times, (rows, cols)), shape=(size, size))
    full_l = csr_matrix((lengths, (rows, cols)), shape=(size, size))
    core = CoreGraph(size, rows, cols, times, lengths, np.arange(size))
    return core, full_t, full_l


def both_ways(a, b, t, back=None):
    return [(a, b, t), (b, a, t if back is None else back)]


@pytest.mark.parametrize(
    "edges,size",
    [
        # A square of junctions 0-1-2-3 with a diagonal, a two-way chain 0-4-5-2 that competes
        # with the diagonal, a one-way loop 1→6→7→3 with 3→1 back, a dead-end tree at 2
        # (8, 9, 10) and a ring 3-11-12-3.
        (
            [
                *both_ways(0, 1, 5),
                *both_ways(1, 2, 4),
                *both_ways(2, 3, 6),
                *both_ways(3, 0, 3),
                *both_ways(0, 2, 9, back=2),
                *both_ways(0, 4, 1),
                *both_ways(4, 5, 1),
                *both_ways(5, 2, 1.5),
                (1, 6, 1),
                (6, 7, 1),
                (7, 3, 1),
                (3, 1, 7),
                *both_ways(2, 8, 2),
                *both_ways(8, 9, 1),
                *both_ways(8, 10, 3),
                *both_ways(3, 11, 1),
                *both_ways(11, 12, 1),
                *both_ways(12, 3, 1),
            ],
            13,
        ),
        # Only a path: all tree.
        ([*both_ways(0, 1, 1), *both_ways(1, 2, 2), *both_ways(2, 3, 3)], 4),
        # Only a ring, one way round.
        ([(0, 1, 1), (1, 2, 1), (2, 3, 1), (3, 0, 1)], 4),
    ],
)
def test_matrices_equal_the_whole_graph_on_awkward_shapes(edges, size):
    core, full_t, full_l = small(edges, size)
    every = list(range(size))
    for nodes in (every, every[::-1], [0, 0, 2], [size - 1], every[1::2] + [1]):
        expected = (
            dijkstra(full_t, indices=nodes)[:, nodes],
            dijkstra(full_l, indices=nodes)[:, nodes],
        )
        assert_same(core.matrices(nodes), expected)


def test_a_bounded_path_search_finds_the_same_path(coquimbo):
    rng = np.random.default_rng(5)
    for _ in range(30):
        source, target = (int(n) for n in rng.choice(coquimbo.snappable, 2))
        whole_path = coquimbo.path(source, target)
        seconds = float(coquimbo.times_from([source])[0][target])
        # Large enough, too small (falls back to the whole graph): the same path either way.
        assert coquimbo.path(source, target, bound_s=seconds + 60) == whole_path
        assert coquimbo.path(source, target, bound_s=1) == whole_path
        _coords, _metres, along = coquimbo.path_geometry(whole_path)
        assert along == pytest.approx(seconds)


def test_a_route_path_bounded_by_its_matrix_times_is_the_same(coquimbo):
    from tracking.roads.routing import route_path

    rng = random.Random(3)
    points = [
        Point(-71.2489 + rng.uniform(-0.03, 0.03), -29.9045 + rng.uniform(-0.03, 0.03), srid=4326)
        for _ in range(12)
    ]
    durations = travel_matrix(points).durations_s
    legs = [durations[i][i + 1] for i in range(len(points) - 1)]
    bounded, default = route_path(points, legs_s=legs), route_path(points)
    assert bounded.geometry.coords == default.geometry.coords
    assert (bounded.length_m, bounded.duration_s) == (default.length_m, default.duration_s)


def test_distances_are_computed_on_first_use_only(coquimbo):
    points = [Point(-71.2489, -29.9045, srid=4326), Point(-71.3394, -29.9533, srid=4326)]
    matrix = travel_matrix(points)
    assert callable(matrix._distances)  # not computed yet
    distances = matrix.distances_m
    assert matrix.distances_m is distances and distances[0][1] > 10_000
