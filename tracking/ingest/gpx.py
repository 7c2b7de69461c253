"""GPX 1.1 import: `trk/trkseg/trkpt` points become fixes for one device.

Parsed with defusedxml (no DTDs, no entities, no external references), with a size cap and a
point limit. Garmin's TrackPointExtension may carry speed (m/s) and course (degrees). Points
without a time cannot be stored as fixes and are refused by index.
"""

from __future__ import annotations

from collections.abc import Iterator

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from django.conf import settings

from tracking.ingest.fixes import (
    Fix,
    FixError,
    measure,
    parse_heading,
    parse_lat_lon,
    parse_time,
)


class GpxError(ValueError):
    def __init__(self, message: str, *, point: int | None = None, field: str | None = None):
        super().__init__(message)
        self.point = point
        self.field = field


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _extension_value(point, names: tuple[str, ...]) -> str | None:
    for element in point.iter():
        if _local(element.tag) in names and element.text:
            return element.text.strip()
    return None


def parse_gpx(data: bytes) -> list[Fix]:
    """All track points of a GPX document, in file order."""
    if len(data) > settings.GPX_MAX_BYTES:
        raise GpxError(f"The file is larger than {settings.GPX_MAX_BYTES // (1024 * 1024)} MB.")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise GpxError(
            f"Refused: {exc.__class__.__name__} (DTDs and entities are not allowed)."
        ) from None
    except Exception as exc:  # noqa: BLE001 - ParseError and friends: not well-formed XML
        raise GpxError(f"Not well-formed XML: {exc}") from None
    if _local(root.tag) != "gpx":
        raise GpxError("Not a GPX document (the root element must be <gpx>).")
    fixes = []
    for index, point in enumerate(_track_points(root)):
        if index >= settings.GPX_MAX_POINTS:
            raise GpxError(f"More than {settings.GPX_MAX_POINTS} track points.")
        try:
            fixes.append(_fix(point))
        except FixError as exc:
            raise GpxError(str(exc), point=index, field=exc.field) from None
    if not fixes:
        raise GpxError("No track points (trk/trkseg/trkpt) in the file.")
    return fixes


def _track_points(root) -> Iterator:
    for element in root.iter():
        if _local(element.tag) == "trkpt":
            yield element


def _fix(point) -> Fix:
    lat, lon = parse_lat_lon(point.get("lat"), point.get("lon"))
    time_text = _child_text(point, "time")
    if not time_text:
        raise FixError("time", "Track point without <time>.")
    # hdop times the usual rule of thumb, a UERE of ~5 m, checked as an accuracy.
    accuracy = measure(_child_text(point, "hdop"), "hdop", "accuracy_m", scale=5)
    return Fix(
        fix_time=parse_time(time_text, "time"),
        lat=lat,
        lon=lon,
        altitude_m=measure(_child_text(point, "ele"), "ele", "altitude_m"),
        accuracy_m=accuracy,
        speed_mps=measure(_extension_value(point, ("speed",)), "speed", "speed_mps"),
        heading_deg=parse_heading(_extension_value(point, ("course", "bearing")), "course"),
    )
