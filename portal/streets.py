"""Streets for the console's offline base map: simplified road lines of the loaded network inside
a bounding box, as GeoJSON. Drawn when internet tiles fail, so a dispatcher never looks at dots
on a blank page.

The road network is public map data (not tenant data). What keeps a response small at any zoom:
minor road classes are dropped below a zoom threshold, lines are simplified to about a pixel,
major classes come first and the feature count is capped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import connection

from tracking.models import OSM_ATTRIBUTION

# Lowest zoom at which each road class is drawn (OpenStreetMap `highway` values; `_link` ramps
# count as their road). Unknown classes are treated as minor.
CLASS_MIN_ZOOM = {
    "motorway": 0,
    "trunk": 0,
    "primary": 10,
    "secondary": 12,
    "tertiary": 13,
    "unclassified": 14,
    "residential": 14,
    "road": 14,
    "default": 14,
    "living_street": 15,
    "service": 16,
}
MINOR_MIN_ZOOM = 14
CLASS_RANK = list(CLASS_MIN_ZOOM)  # draw order and cap priority: major roads first
MAX_FEATURES = 6000
MIN_ZOOM, MAX_ZOOM = 0, 22
# Tile pixels are 256 wide: one pixel at zoom z spans 360 / (256 * 2^z) degrees of longitude.
SIMPLIFY_PIXELS = 1.0
COORDINATE_DECIMALS = 6  # ~10 cm


class StreetsQueryError(ValueError):
    """A bbox or zoom the endpoint cannot use; the message says why (for a 400)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class StreetsQuery:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    zoom: int


def parse_streets_query(bbox: str | None, zoom: str | None) -> StreetsQuery:
    if not bbox:
        raise StreetsQueryError("bbox", "Give bbox=<minlon>,<minlat>,<maxlon>,<maxlat>.")
    try:
        values = [float(part) for part in bbox.split(",")]
    except ValueError:
        raise StreetsQueryError("bbox", "bbox must be four numbers separated by commas.") from None
    if len(values) != 4 or any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise StreetsQueryError("bbox", "bbox must be four numbers separated by commas.")
    min_lon, min_lat, max_lon, max_lat = values
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise StreetsQueryError(
            "bbox", "bbox must be minlon,minlat,maxlon,maxlat with min < max, in WGS 84 degrees."
        )
    if zoom in (None, ""):
        raise StreetsQueryError("zoom", f"Give zoom={MIN_ZOOM}..{MAX_ZOOM}.")
    try:
        level = int(zoom)
    except ValueError:
        raise StreetsQueryError(
            "zoom", f"zoom must be an integer {MIN_ZOOM}..{MAX_ZOOM}."
        ) from None
    if not MIN_ZOOM <= level <= MAX_ZOOM:
        raise StreetsQueryError("zoom", f"zoom must be an integer {MIN_ZOOM}..{MAX_ZOOM}.")
    return StreetsQuery(min_lon, min_lat, max_lon, max_lat, level)


def classes_at(zoom: int) -> list[str]:
    return [name for name, lowest in CLASS_MIN_ZOOM.items() if zoom >= lowest]


def simplify_tolerance_deg(zoom: int) -> float:
    return SIMPLIFY_PIXELS * 360.0 / (256 * 2**zoom)


_SQL = """
WITH box AS (
    SELECT ST_MakeEnvelope(%(min_lon)s, %(min_lat)s, %(max_lon)s, %(max_lat)s, 4326) AS g
),
edges AS (
    SELECT e.geom, regexp_replace(e.road_class, '_link$', '') AS road_class
    FROM tracking_roadedge e
    JOIN tracking_roadnetwork n ON n.id = e.network_id AND n.loaded_at IS NOT NULL, box
    WHERE e.geom && box.g AND ST_Intersects(e.geom, box.g)
)
SELECT road_class,
       ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, %(tolerance)s), %(decimals)s)
FROM edges
WHERE (road_class = ANY(%(classes)s)) OR (%(all_minor)s AND NOT road_class = ANY(%(known)s))
ORDER BY array_position(%(rank)s::text[], road_class) NULLS LAST
LIMIT %(limit)s
"""


def streets_geojson(query: StreetsQuery) -> dict:
    """A FeatureCollection of road LineStrings (`properties.class`) in the bbox; empty when no
    network is loaded. `truncated` says the cap cut minor roads off."""
    with connection.cursor() as cursor:
        cursor.execute(
            _SQL,
            {
                "min_lon": query.min_lon,
                "min_lat": query.min_lat,
                "max_lon": query.max_lon,
                "max_lat": query.max_lat,
                "tolerance": simplify_tolerance_deg(query.zoom),
                "classes": classes_at(query.zoom),
                "all_minor": query.zoom >= MINOR_MIN_ZOOM,
                "known": CLASS_RANK,
                "rank": CLASS_RANK,
                "limit": MAX_FEATURES + 1,
                "decimals": COORDINATE_DECIMALS,
            },
        )
        rows = cursor.fetchall()
    truncated = len(rows) > MAX_FEATURES
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": json.loads(geometry), "properties": {"class": name}}
            for name, geometry in rows[:MAX_FEATURES]
        ],
        "truncated": truncated,
        "zoom": query.zoom,
        "attribution": OSM_ATTRIBUTION,
    }
