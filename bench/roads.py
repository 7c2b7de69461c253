"""Road network benchmark: import time, shortest-path latency, a 100×100 travel-time matrix.

    .venv/bin/python bench/roads.py

Uses the Coquimbo network (fetched and cached like `manage.py load_road_network --demo
coquimbo`), re-imported each run. Writes bench/results/roads.json.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
# A benchmark signs nothing worth protecting; production settings refuse to start without a key.
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.contrib.gis.geos import Point  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from tracking.models import RoadNetwork  # noqa: E402
from tracking.roads import sources  # noqa: E402
from tracking.roads.graph import graph_for  # noqa: E402
from tracking.roads.readers import read_aequilibrae  # noqa: E402
from tracking.roads.routing import route_path, travel_matrix  # noqa: E402
from tracking.roads.services import network_store  # noqa: E402


def random_points(rng: random.Random, n: int) -> list[Point]:
    """Points in the urban area of La Serena–Coquimbo."""
    return [
        Point(rng.uniform(-71.34, -71.22), rng.uniform(-29.97, -29.88), srid=4326) for _ in range(n)
    ]


def main() -> None:
    results: dict = {}
    started = time.perf_counter()
    database = sources.coquimbo_database()
    nodes, edges = read_aequilibrae(database)
    read_s = time.perf_counter() - started
    network = network_store(
        slug="coquimbo",
        name="Coquimbo – La Serena (Chile)",
        source=f"{sources.COQUIMBO_WHEEL} {sources.COQUIMBO_MEMBER}",
        nodes=nodes,
        edges=edges,
    )
    results["import_coquimbo_s"] = round(time.perf_counter() - started, 2)
    results["import_read_s"] = round(read_s, 2)
    results["network_nodes"] = network.node_count
    results["network_edges"] = network.edge_count

    started = time.perf_counter()
    graph_for(RoadNetwork.objects.get(slug="coquimbo"))
    results["graph_build_s"] = round(time.perf_counter() - started, 2)

    rng = random.Random(7)
    latencies = []
    for _ in range(1000):
        a, b = random_points(rng, 2)
        started = time.perf_counter()
        route_path([a, b])
        latencies.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(latencies, n=100)
    results["path_p50_ms"] = round(cuts[49], 2)
    results["path_p99_ms"] = round(cuts[98], 2)

    points = random_points(rng, 100)
    started = time.perf_counter()
    matrix = travel_matrix(points)  # the first also contracts the graph (tracking/roads/core.py)
    assert len(matrix.distances_m) == 100  # computed on first use
    results["matrix_100x100_first_ms"] = round((time.perf_counter() - started) * 1000)
    results["matrix_source"] = matrix.source
    # Then, interleaved on the same points, five times each (medians): travel_matrix as it runs
    # now on the contracted graph, durations and distances (what the planner reads) and
    # durations only (ETAs, reassigning), and the whole-graph Dijkstra it replaced (both).
    graph = graph_for(RoadNetwork.objects.get(slug="coquimbo"))
    snaps = graph.snap([p.x for p in points], [p.y for p in points])
    nodes = [s.index for s in snaps]
    both, durations_only, whole = [], [], []
    for _ in range(5):
        started = time.perf_counter()
        assert len(travel_matrix(points).distances_m) == 100
        both.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        travel_matrix(points)
        durations_only.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        graph.times_from(nodes)
        graph.lengths_from(nodes)
        whole.append((time.perf_counter() - started) * 1000)
    results["matrix_100x100_ms"] = round(statistics.median(both))
    results["matrix_100x100_durations_only_ms"] = round(statistics.median(durations_only))
    results["matrix_100x100_whole_graph_ms"] = round(statistics.median(whole))
    results["matrix_contracted_nodes"] = graph.core.core_count
    write_results("roads", results)


if __name__ == "__main__":
    main()
