"""Road networks: the real Coquimbo data and an OpenStreetMap extract (Monaco), imported into
PostGIS and routed on. The data is fetched once from the package index and cached outside the
repository (tracking/roads/sources.py)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.core.management.base import CommandError

from tracking.geo import point_distance_m
from tracking.models import RoadEdge, RoadNetwork, RoadNode
from tracking.roads import sources
from tracking.roads.routing import route_path, travel_matrix

pytestmark = pytest.mark.django_db

LA_SERENA_HUB = Point(-71.2489, -29.9045, srid=4326)  # Av. Balmaceda, La Serena
COQUIMBO_STORE = Point(-71.3394, -29.9533, srid=4326)  # Av. Videla, Coquimbo


def load(*args) -> str:
    out = StringIO()
    call_command("load_road_network", *args, "--no-progress", stdout=out)
    return out.getvalue()


@pytest.fixture
def coquimbo():
    load("--demo", "coquimbo", "--if-missing")
    return RoadNetwork.objects.get(slug="coquimbo")


def test_the_coquimbo_network_is_imported_whole_and_idempotently(coquimbo):
    assert coquimbo.node_count == RoadNode.objects.filter(network=coquimbo).count() == 15591
    assert coquimbo.edge_count == RoadEdge.objects.filter(network=coquimbo).count() == 19834
    assert coquimbo.bbox.contains(LA_SERENA_HUB) and coquimbo.bbox.contains(COQUIMBO_STORE)
    assert "OpenStreetMap" in coquimbo.attribution
    classes = set(RoadEdge.objects.filter(network=coquimbo).values_list("road_class", flat=True))
    assert {"primary", "residential", "trunk"} <= classes and "centroid_connector" not in classes
    one_way = RoadEdge.objects.filter(network=coquimbo, reverse_cost_s=-1).count()
    assert 4000 < one_way < 7000  # AequilibraE's direction 1 / -1 links
    output = load("--demo", "coquimbo")  # again: replaced, not duplicated
    assert "15591 nodes, 19834 edges" in output
    assert RoadEdge.objects.filter(network__slug="coquimbo").count() == 19834


def test_a_hand_checked_pair_la_serena_to_coquimbo(coquimbo):
    """Hub to dark store: 10.3 km as the crow flies; by road along the coast (Ruta 5 / Av.
    Costanera) about 13 km and a quarter of an hour at urban speeds."""
    path = route_path([LA_SERENA_HUB, COQUIMBO_STORE])
    assert path.source == "road:coquimbo"
    assert point_distance_m(LA_SERENA_HUB, COQUIMBO_STORE) == pytest.approx(10_300, rel=0.03)
    assert 11_500 < path.length_m < 15_500
    assert 10 * 60 < path.duration_s < 25 * 60
    start, end = path.geometry.coords[0], path.geometry.coords[-1]
    assert start == (LA_SERENA_HUB.x, LA_SERENA_HUB.y) and end == (
        COQUIMBO_STORE.x,
        COQUIMBO_STORE.y,
    )
    back = route_path([COQUIMBO_STORE, LA_SERENA_HUB])
    assert back.length_m == pytest.approx(path.length_m, rel=0.15)


def test_one_way_streets_are_respected(coquimbo):
    from tracking.roads.graph import graph_for

    graph = graph_for(coquimbo)
    edges = RoadEdge.objects.filter(
        network=coquimbo, reverse_cost_s=-1, road_class="residential", length_m__gt=80
    ).order_by("id")
    edge = next(e for e in edges if graph.index[e.source] in set(graph.snappable.tolist()))
    source, target = graph.index[edge.source], graph.index[edge.target]
    assert (source, target) in graph.segments and (target, source) not in graph.segments
    backward = graph.path(target, source)
    assert len(backward) > 2  # around the block, never straight back against the arrow
    assert all((a, b) != (target, source) for a, b in zip(backward, backward[1:], strict=False))
    end, start = Point(*edge.geom.coords[-1], srid=4326), Point(*edge.geom.coords[0], srid=4326)
    assert route_path([end, start]).length_m > edge.length_m + 20


def test_a_travel_time_matrix(coquimbo):
    points = [LA_SERENA_HUB, COQUIMBO_STORE, Point(-71.2600, -29.9220, srid=4326)]
    matrix = travel_matrix(points)
    assert matrix.source == "road:coquimbo"
    assert [matrix.durations_s[i][i] for i in range(3)] == [0, 0, 0]
    single = route_path([LA_SERENA_HUB, COQUIMBO_STORE])
    assert matrix.durations_s[0][1] == pytest.approx(single.duration_s, rel=0.02)
    assert matrix.distances_m[0][1] <= single.length_m + 1  # shortest distance ≤ fastest's
    # The triangle inequality holds up to the access legs counted at each end.
    assert matrix.durations_s[0][1] <= matrix.durations_s[0][2] + matrix.durations_s[2][1] + 120


def test_a_bounded_search_gives_the_same_leg_times_as_the_whole_graph(coquimbo):
    import random

    from tracking.roads.graph import graph_for

    graph = graph_for(coquimbo)
    rng = random.Random(7)
    nodes = graph.snappable.tolist()
    for _ in range(40):
        source, target = rng.choice(nodes), rng.choice(nodes)
        whole = float(graph.times_from([source])[0][target])
        # A bound far too small must fall back to the whole search, a large one must agree.
        assert graph.time_between(source, target, bound_s=1) == pytest.approx(whole)
        assert graph.time_between(source, target, bound_s=5_000) == pytest.approx(whole)


def test_outside_any_network_routing_falls_back_to_straight_lines(coquimbo):
    paris = [Point(2.35, 48.85, srid=4326), Point(2.36, 48.86, srid=4326)]
    assert travel_matrix(paris).source == "straight_line"
    assert route_path(paris).source == "straight_line"


def test_an_openstreetmap_extract_monaco():
    pbf = sources.monaco_pbf()
    output = load("--osm", str(pbf))
    monaco = RoadNetwork.objects.get(slug="monaco")
    assert monaco.edge_count > 2000 and f"{monaco.node_count} nodes" in output
    casino, port = Point(7.4280, 43.7395, srid=4326), Point(7.4220, 43.7350, srid=4326)
    path = route_path([casino, port])
    assert path.source == "road:monaco" and 500 < path.length_m < 3000


def test_speeds_are_configurable(coquimbo, settings):
    edge = RoadEdge.objects.filter(network=coquimbo, road_class="residential").first()
    assert edge.cost_s == pytest.approx(edge.length_m / (25 / 3.6))
    settings.ROAD_SPEEDS_KMH = {**settings.ROAD_SPEEDS_KMH, "residential": 50}
    load("--demo", "coquimbo")
    faster = RoadEdge.objects.get(
        network__slug="coquimbo", source=edge.source, target=edge.target, osm_id=edge.osm_id
    )
    assert faster.cost_s == pytest.approx(edge.cost_s / 2)
    assert RoadNetwork.objects.get(slug="coquimbo").speeds_kmh["residential"] == 50


def test_bad_inputs_are_explained(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        load("--osm", str(tmp_path / "nowhere.osm.pbf"))
    empty = tmp_path / "empty.osm"
    empty.write_text('<?xml version="1.0"?><osm version="0.6"><node id="1" lat="1" lon="1"/></osm>')
    with pytest.raises(CommandError, match="No drivable roads"):
        load("--osm", str(empty))
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"not a pbf")
    with pytest.raises(CommandError, match="Could not read"):
        load("--osm", str(broken))
