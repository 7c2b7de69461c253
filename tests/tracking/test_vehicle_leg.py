"""The vehicle's own leg (tracking/roads/routing.py `vehicle_leg`, `leg_durations(...,
from_vehicle=True)`, tracking/eta/legs.py `legs_many`): from a position mid-street, it joins the
network at whichever nearby node gets it to its stop first, not at the nearest one, which on a
divided road is often on the other carriageway (a U-turn kilometres away)."""

from __future__ import annotations

import random

import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command

from tracking.eta.legs import XY, legs_many
from tracking.models import RoadEdge, RoadNetwork
from tracking.roads import routing
from tracking.roads.graph import graph_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def coquimbo():
    call_command("load_road_network", "--demo", "coquimbo", "--if-missing", "--no-progress")
    routing.forget_networks()
    routing._leg_cache.clear()
    yield graph_for(RoadNetwork.objects.get(slug="coquimbo"))
    routing._leg_cache.clear()


def _node_point(graph, index: int) -> Point:
    return Point(float(graph.lon[index]), float(graph.lat[index]), srid=4326)


def test_a_vehicle_on_a_divided_road_drives_on_instead_of_turning_round(coquimbo):
    """Halfway along a one-way carriageway (motorway, 135 m), the nearest node is on the
    opposite carriageway: from there the stop is a U-turn away (~350 s more). The vehicle's
    leg is the rest of its own carriageway plus the fastest path on."""
    edge = RoadEdge.objects.get(network__slug="coquimbo", source=42288, target=42170)
    assert edge.reverse_cost_s == -1
    here = edge.geom.interpolate_normalized(0.5)
    here = Point(here.x, here.y, srid=4326)
    head = coquimbo.index[edge.target]
    [nearest] = coquimbo.snap([here.x], [here.y])
    assert nearest.index not in (coquimbo.index[edge.source], head)
    times = coquimbo.times_from([head])[0]
    stop_node = next(int(i) for i in coquimbo.snappable if 120 < times[i] < 200)
    stop = _node_point(coquimbo, stop_node)
    remaining = 0.5 * edge.cost_s + times[stop_node]

    nearest_node_leg = routing.leg_durations([here, stop])[0]
    leg = routing.vehicle_leg(here, stop)
    assert nearest_node_leg > remaining + 250  # the detour this fixes
    assert remaining - 5 < leg.seconds < remaining + 20
    assert routing.leg_durations([here, stop], from_vehicle=True) == [leg.seconds]
    # Its length: the rest of the carriageway and the path on, not the way round.
    path = coquimbo.path(head, stop_node)
    _coords, path_m, _s = coquimbo.path_geometry(path)
    assert 0.5 * edge.length_m + path_m - 5 < leg.length_m < 0.5 * edge.length_m + path_m + 40


def _mid_street_routes(count: int, stops: int) -> list[list[Point]]:
    rng = random.Random(11)
    lines = list(
        RoadEdge.objects.filter(network__slug="coquimbo")
        .order_by("id")
        .values_list("geom", flat=True)[:3000]
    )
    routes = []
    for _ in range(count):
        points = [rng.choice(lines).interpolate_normalized(rng.random()) for _ in range(stops + 1)]
        routes.append([Point(p.x, p.y + 0.0002, srid=4326) for p in points])
    return routes


def test_one_route_and_bulk_agree_and_only_the_first_leg_changes(coquimbo):
    routes = _mid_street_routes(12, 3)
    shorter = 0
    bulk = legs_many([[XY(p.x, p.y) for p in r] for r in routes], from_vehicle=True, share=False)
    for route, bulk_legs in zip(routes, bulk, strict=True):
        one = routing.leg_durations(route, from_vehicle=True)
        assert one == bulk_legs
        assert one[0] == routing.vehicle_leg(route[0], route[1]).seconds
        places = routing.leg_durations(route)
        assert one[1:] == places[1:]  # stop-to-stop legs: as before
        # The nearest node is one of the candidates, reached faster: never a longer leg.
        assert one[0] <= places[0]
        shorter += one[0] < places[0]
        # A stop-to-stop leg is the nearest nodes' fastest time plus both accesses on foot.
        a, b = coquimbo.snap([route[1].x, route[2].x], [route[1].y, route[2].y])
        road_s = coquimbo.times_from([a.index])[0][b.index]
        assert places[1] == pytest.approx(
            road_s + (a.distance_m + b.distance_m) / routing.ACCESS_SPEED_MPS
        )
    assert shorter > 6  # driving to the street, not walking: most vehicle legs are shorter


def test_off_the_network_the_vehicle_leg_is_a_straight_line(coquimbo):
    here, stop = Point(2.35, 48.85, srid=4326), Point(2.36, 48.86, srid=4326)  # Paris
    line = routing.straight_line_matrix([here, stop])
    leg = routing.vehicle_leg(here, stop)
    assert leg == (line.durations_s[0][1], line.distances_m[0][1])
    assert routing.leg_durations([here, stop], from_vehicle=True) == [leg.seconds]
