"""Streets for the offline base map (`GET /api/v1/console/streets/?bbox=&zoom=`): GeoJSON of the
loaded road network inside a bbox, minor roads dropped at low zoom, cacheable, empty without a
network, only for logged-in console users."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import LineString, Polygon

from control_tower.tenancy.roles import Role
from portal import streets
from tests.portal.road_loop import NODES, ONE_WAY, load_loop_network, lonlat, road_class

pytestmark = pytest.mark.django_db

URL = "/api/v1/console/streets/"


def bbox(min_x, min_y, max_x, max_y) -> str:
    (a, b), (c, d) = lonlat(min_x, min_y), lonlat(max_x, max_y)
    return f"{a},{b},{c},{d}"


def get(client, box, zoom=16):
    return client.get(URL, {"bbox": box, "zoom": zoom})


@pytest.fixture
def client(tenant, api_client_for):
    return api_client_for(tenant.user(Role.DISPATCHER))


def test_streets_inside_the_bbox_as_geojson_lines(client):
    load_loop_network()
    whole = get(client, bbox(-0.5, -0.5, 3.5, 1.5))
    assert whole.status_code == 200
    assert "public" in whole["Cache-Control"] and "max-age=" in whole["Cache-Control"]
    body = whole.json()
    assert body["type"] == "FeatureCollection" and body["truncated"] is False
    assert "OpenStreetMap" in body["attribution"]
    assert len(body["features"]) == len(ONE_WAY)
    classes = sorted(f["properties"]["class"] for f in body["features"])
    assert classes == sorted(road_class(a, b) for a, b in ONE_WAY)
    for feature in body["features"]:
        assert feature["type"] == "Feature" and feature["geometry"]["type"] == "LineString"
        assert len(feature["geometry"]["coordinates"]) >= 2

    # Only the west end: the two edges along x = 0..1 on each street and the hub's link north.
    west = get(client, bbox(-0.2, -0.2, 0.5, 1.2)).json()["features"]
    box = Polygon.from_bbox((*lonlat(-0.2, -0.2), *lonlat(0.5, 1.2)))
    assert len(west) == 3
    assert all(LineString(f["geometry"]["coordinates"]).intersects(box) for f in west)

    elsewhere = get(client, "10.0,10.0,10.1,10.1").json()
    assert elsewhere["features"] == [] and elsewhere["type"] == "FeatureCollection"


def test_low_zooms_drop_minor_roads(client):
    load_loop_network()
    everything = bbox(-0.5, -0.5, 3.5, 1.5)
    close = {f["properties"]["class"] for f in get(client, everything, 15).json()["features"]}
    far = {f["properties"]["class"] for f in get(client, everything, 11).json()["features"]}
    very_far = get(client, everything, 5).json()["features"]
    assert close == {"primary", "residential"}
    assert far == {"primary"}
    assert very_far == []  # neither motorways nor trunks in this network


def test_the_feature_count_is_capped_major_roads_first(client, monkeypatch):
    load_loop_network()
    monkeypatch.setattr(streets, "MAX_FEATURES", 3)
    body = get(client, bbox(-0.5, -0.5, 3.5, 1.5)).json()
    assert body["truncated"] is True and len(body["features"]) == 3
    assert {f["properties"]["class"] for f in body["features"]} == {"primary"}


def test_no_network_loaded_gives_an_empty_collection(client):
    body = get(client, bbox(-0.5, -0.5, 3.5, 1.5)).json()
    assert body["type"] == "FeatureCollection" and body["features"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"zoom": 14}, "bbox"),
        ({"bbox": "1,2,3", "zoom": 14}, "bbox"),
        ({"bbox": "a,b,c,d", "zoom": 14}, "bbox"),
        ({"bbox": "3,2,1,4", "zoom": 14}, "bbox"),
        ({"bbox": "-70,-30,-69.9,-29.9", "zoom": 99}, "zoom"),
        ({"bbox": "-70,-30,-69.9,-29.9"}, "zoom"),
        ({"bbox": "-70,-30,-69.9,-29.9", "zoom": "near"}, "zoom"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client, params, field):
    response = client.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()


def test_streets_need_a_logged_in_console_user(tenant, other_tenant, api_client_for):
    load_loop_network()
    box = bbox(-0.5, -0.5, 3.5, 1.5)
    assert get(api_client_for(), box).status_code in (401, 403)
    assert get(api_client_for(tenant.user(Role.DRIVER)), box).status_code == 403
    # Public map data: another organization's people see the same streets.
    for user in (tenant.user(Role.CARRIER_USER), other_tenant.user(Role.OPS_MANAGER)):
        features = get(api_client_for(user), box).json()["features"]
        assert len(features) == len(NODES)
