"""One normalized GPS fix, and the field parsers every protocol shares.

Each protocol (native batch, OsmAnd, Traccar JSON, OwnTracks, GPX) turns what the device sent
into `Fix` objects: UTC time, degrees, metres, metres per second, percent. A value that cannot
be understood raises `FixError` naming the field, so the caller can answer with a 4xx that says
what is wrong (and, in a batch, at which index).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.utils.dateparse import parse_datetime

KNOTS_TO_MPS = 1852 / 3600
KMH_TO_MPS = 1000 / 3600
EPOCH_SECONDS_LIMIT = 2**31  # below: epoch seconds; above: epoch milliseconds (OsmAnd rule)


class FixError(ValueError):
    """A field of a fix is missing or malformed."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass
class Fix:
    fix_time: datetime
    lat: float
    lon: float
    event_id: str = ""
    accuracy_m: float | None = None
    speed_mps: float | None = None
    heading_deg: float | None = None
    altitude_m: float | None = None
    battery_pct: int | None = None
    charging: bool | None = None
    moving: bool | None = None
    mock: bool = False
    valid: bool = True
    attributes: dict = field(default_factory=dict)
    flags: int = 0

    @property
    def key(self) -> tuple[datetime, str]:
        """The idempotency key within one device."""
        return (self.fix_time, self.event_id)


def parse_time(value, field_name: str = "timestamp") -> datetime:
    """Epoch seconds or milliseconds (numbers or digit strings; below 2^31 is seconds), or
    ISO-8601 (a time without offset is taken as UTC). Returns an aware UTC datetime."""
    if isinstance(value, bool) or value is None or value == "":
        raise FixError(field_name, "A time is required.")
    number = None
    if isinstance(value, int | float) or isinstance(value, str) and _is_number(value):
        number = float(value)
    if number is not None:
        if not math.isfinite(number) or number < 0:
            raise FixError(field_name, f"Not a valid epoch time: {value!r}.")
        seconds = number if number < EPOCH_SECONDS_LIMIT else number / 1000
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise FixError(field_name, f"Epoch time out of range: {value!r}.") from exc
    if isinstance(value, str):
        try:  # the C parser first (Python 3.11 reads "Z" and offsets); Django's regex after
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    raise FixError(field_name, f"Use epoch seconds, epoch milliseconds or ISO-8601, not {value!r}.")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in {"nan", "inf", "-inf", "infinity", "-infinity"}


def parse_float(
    value,
    field_name: str,
    *,
    required: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    unknown_negative: bool = False,
) -> float | None:
    """A finite number within bounds. `unknown_negative`: Traccar Client sends -1 for unknown."""
    if value is None or value == "":
        if required:
            raise FixError(field_name, "This field is required.")
        return None
    if isinstance(value, bool):
        raise FixError(field_name, "A number is required.")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise FixError(field_name, f"A number is required, not {value!r}.") from exc
    if not math.isfinite(number):
        raise FixError(field_name, "A finite number is required.")
    if unknown_negative and number < 0:
        return None
    if minimum is not None and number < minimum:
        raise FixError(field_name, f"Must be at least {minimum:g}.")
    if maximum is not None and number > maximum:
        raise FixError(field_name, f"Must be at most {maximum:g}.")
    return number


def parse_bool(value, field_name: str) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise FixError(field_name, f"true or false, not {value!r}.")


def parse_lat_lon(lat, lon) -> tuple[float, float]:
    lat_f = parse_float(lat, "lat", required=True, minimum=-90, maximum=90)
    lon_f = parse_float(lon, "lon", required=True, minimum=-180, maximum=180)
    if lat_f == 0 and lon_f == 0:
        # "Null Island": what a phone sends before it has a fix.
        raise FixError("lat", "0,0 is not a position (no fix yet?).")
    return lat_f, lon_f


def normalize_heading(value: float | None) -> float | None:
    return None if value is None else value % 360


def bounded_attributes(attributes: dict) -> dict:
    """Keep the protocol's extra attributes, but never more than a few KB per fix."""
    if not attributes:
        return {}
    kept, size = {}, 2
    for key in sorted(attributes):
        item = json.dumps({str(key)[:64]: attributes[key]}, default=str)
        if size + len(item) > settings.PING_MAX_ATTRIBUTES_BYTES:
            kept["_truncated"] = True
            break
        kept[str(key)[:64]] = json.loads(item)[str(key)[:64]]
        size += len(item)
    return kept
