"""GeoJSON fields for points and lines (WGS 84, [longitude, latitude])."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from django.contrib.gis.geos import LineString, Point
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from control_tower.numbers import finite_or_none

POINT_SCHEMA = {
    "type": "object",
    "description": 'GeoJSON Point, WGS 84: {"type": "Point", "coordinates": [lon, lat]}. '
    'Also accepted on input: {"lat": .., "lon": ..}.',
    "properties": {
        "type": {"type": "string", "enum": ["Point"]},
        "coordinates": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    },
    "required": ["type", "coordinates"],
}
LINE_SCHEMA = {
    "type": "object",
    "description": "GeoJSON LineString, WGS 84.",
    "properties": {
        "type": {"type": "string", "enum": ["LineString"]},
        "coordinates": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}},
        },
    },
    "required": ["type", "coordinates"],
}


def _coordinate(value, *, field) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise serializers.ValidationError(f"{field} must be a number.")
    return float(value)


def parse_lon_lat(pair) -> tuple[float, float]:
    if not isinstance(pair, list | tuple) or len(pair) not in (2, 3):
        raise serializers.ValidationError("A position is [longitude, latitude].")
    lon = _coordinate(pair[0], field="longitude")
    lat = _coordinate(pair[1], field="latitude")
    if not -180 <= lon <= 180:
        raise serializers.ValidationError("Longitude must be between -180 and 180.")
    if not -90 <= lat <= 90:
        raise serializers.ValidationError("Latitude must be between -90 and 90.")
    return lon, lat


@extend_schema_field(POINT_SCHEMA)
class PointField(serializers.Field):
    def to_internal_value(self, data) -> Point:
        if isinstance(data, dict) and "lat" in data and "lon" in data:
            lon, lat = parse_lon_lat([data["lon"], data["lat"]])
        elif isinstance(data, dict) and data.get("type") == "Point":
            lon, lat = parse_lon_lat(data.get("coordinates"))
        else:
            raise serializers.ValidationError(
                'Expected a GeoJSON Point {"type": "Point", "coordinates": [lon, lat]} '
                'or {"lat": .., "lon": ..}.'
            )
        return Point(lon, lat, srid=4326)

    def to_representation(self, value: Point):
        return {"type": "Point", "coordinates": [round(value.x, 7), round(value.y, 7)]}


@extend_schema_field(LINE_SCHEMA)
class LineStringField(serializers.Field):
    def to_internal_value(self, data) -> LineString:
        if not isinstance(data, dict) or data.get("type") != "LineString":
            raise serializers.ValidationError("Expected a GeoJSON LineString.")
        coordinates = data.get("coordinates")
        if not isinstance(coordinates, list) or len(coordinates) < 2:
            raise serializers.ValidationError("A LineString needs at least two positions.")
        if len(coordinates) > 50_000:
            raise serializers.ValidationError("A LineString may have at most 50,000 positions.")
        return LineString([parse_lon_lat(p) for p in coordinates], srid=4326)

    def to_representation(self, value: LineString):
        return {
            "type": "LineString",
            "coordinates": [[round(x, 7), round(y, 7)] for x, y, *_ in value.coords],
        }


__all__ = ["PointField", "LineStringField", "OpenApiTypes"]


class FiniteFloatField(serializers.FloatField):
    """A float that is finite both ways: "NaN" or "inf" in a form is refused (DRF's FloatField
    takes them, and NaN passes min/max checks), and a stored Infinity or NaN (rows written
    before device input was bounded) reads out as null, so one bad fix never fails a list."""

    default_error_messages = {"non_finite": "A finite number is required."}

    def to_internal_value(self, data):
        number = super().to_internal_value(data)
        if not math.isfinite(number):
            self.fail("non_finite")
        return number

    def to_representation(self, value):
        return finite_or_none(value)


# Every date-time a client writes (route and stop plans, windows, scans, POD capture times):
# a year such as 4845 is a typo or a fuzzer, and far-off values break date arithmetic later.
DATETIME_MIN = datetime(2000, 1, 1, tzinfo=UTC)
DATETIME_MAX = datetime(2100, 1, 1, tzinfo=UTC)


class SaneDateTimeField(serializers.DateTimeField):
    """DRF's DateTimeField, refusing values outside [DATETIME_MIN, DATETIME_MAX)."""

    default_error_messages = {
        "outside_window": f"Must be between {DATETIME_MIN.year} and {DATETIME_MAX.year}."
    }

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if not DATETIME_MIN <= aware < DATETIME_MAX:
            self.fail("outside_window")
        return parsed
