"""JSON safety of event payloads: times as UTC ISO strings with an offset, non-finite floats as
null, points as [lon, lat]. Used by the catalog's payload builders (and `iso` by anyone who
writes times the way events do)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal


def iso(value: datetime | None) -> str | None:
    """UTC with an explicit offset (`2026-12-06T04:00:00+00:00`), or None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat()


def finite(value) -> float | None:
    """The number as a float, or None when it is missing or not finite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def json_safe(value):
    """Plain JSON types only: times as UTC ISO strings, non-finite floats as null."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float | Decimal):
        return finite(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not allowed in an event payload")


def point(location) -> list[float] | None:
    """A GEOS point as [lon, lat] (7 decimals), or None."""
    if location is None:
        return None
    lon, lat = finite(location.x), finite(location.y)
    if lon is None or lat is None:
        return None
    return [round(lon, 7), round(lat, 7)]
