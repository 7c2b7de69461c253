"""One normalized GPS fix, and the field parsers every protocol shares.

Each protocol (native batch, OsmAnd, Traccar JSON, OwnTracks, GPX) turns what the device sent
into `Fix` objects: UTC time, degrees, metres, metres per second, percent. A value that cannot
be understood raises `FixError` naming the field, so the caller can answer with a 4xx that says
what is wrong (and, in a batch, at which index).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

KNOTS_TO_MPS = 1852 / 3600
KMH_TO_MPS = 1000 / 3600
EPOCH_SECONDS_LIMIT = 2**31  # below: epoch seconds; above: epoch milliseconds (OsmAnd rule)


@dataclass(frozen=True)
class Bound:
    minimum: float
    maximum: float
    unit: str


# What any device may report, in our units, whatever the protocol. A value outside is refused
# (400 naming the field), never stored: it is a broken or hostile sender, not a bad fix. Values
# inside but implausible for a vehicle are stored and flagged by pings.flag_fixes instead
# (accuracy above PING_MAX_ACCURACY_M, speed above PING_MAX_SPEED_MPS).
BOUNDS: dict[str, Bound] = {
    "lat": Bound(-90, 90, "degrees"),
    "lon": Bound(-180, 180, "degrees"),
    "accuracy_m": Bound(0, 100_000, "m"),
    "speed_mps": Bound(0, 340, "m/s"),  # the speed of sound: no phone on a delivery goes faster
    "heading_deg": Bound(0, 720, "degrees"),  # one extra turn tolerated, then taken modulo 360
    "altitude_m": Bound(-1_000, 100_000, "m"),
    "battery_pct": Bound(0, 100, "%"),
    "odometer_m": Bound(0, 1e10, "m"),  # ten million km
}
# Fix times: GPS phones did not exist before TIME_MIN; after `latest_fix_time()` (a day ahead
# of the server clock) it is a broken clock or a unit mistake, and such a row would sit in the
# default partition that retention never empties. Between PING_MAX_FUTURE_S and that, a fix is
# stored and flagged `future`; older than retention, stored, flagged and deleted by retention.
TIME_MIN = datetime(2000, 1, 1, tzinfo=UTC)


def latest_fix_time() -> datetime:
    return timezone.now() + timedelta(seconds=settings.PING_MAX_AHEAD_S)


# Numbers as devices write them: ASCII digits, an optional fraction and exponent. Python's
# float() would also take "1_0", "nan", "inf" and Unicode digits such as "١٠".
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?", re.ASCII)
MAX_NUMBER_CHARS = 40
MAX_INTEGER = 10**18  # an integer beyond is no measurement (and float() of 400 digits fails)


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


def parse_number(value, field_name: str, *, required: bool = False) -> float | None:
    """A finite number written plainly: a JSON number, or a string of ASCII digits with an
    optional sign, fraction and exponent. None for a missing value."""
    if value is None or value == "":
        if required:
            raise FixError(field_name, "This field is required.")
        return None
    if isinstance(value, bool):
        raise FixError(field_name, "A number is required.")
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise FixError(field_name, "The number is too large.")
        return float(value)
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_CHARS or not _NUMBER.fullmatch(text):
            raise FixError(field_name, f"A number is required, not {value[:MAX_NUMBER_CHARS]!r}.")
        number = float(text)
    else:
        raise FixError(field_name, "A number is required.")
    if not math.isfinite(number):
        raise FixError(field_name, "A finite number is required.")
    return number


def measure(
    value,
    field_name: str,
    kind: str,
    *,
    scale: float = 1.0,
    required: bool = False,
    minus_one_unknown: bool = False,
) -> float | None:
    """`value` (in the protocol's unit; `scale` converts to ours) checked against
    `BOUNDS[kind]`. `minus_one_unknown`: Traccar Client and OwnTracks send -1 for "unknown"."""
    number = parse_number(value, field_name, required=required)
    if number is None or (minus_one_unknown and number == -1):
        return None
    converted = number * scale
    bound = BOUNDS[kind]
    if not bound.minimum <= converted <= bound.maximum:
        low, high = bound.minimum / scale, bound.maximum / scale
        raise FixError(field_name, f"Must be between {low:g} and {high:g}.")
    return converted


def parse_battery(
    value, field_name: str, *, fraction: bool = False, minus_one_unknown: bool = False
) -> int | None:
    """Percent (or a 0..1 fraction for Traccar JSON), rounded."""
    number = measure(
        value,
        field_name,
        "battery_pct",
        scale=100 if fraction else 1,
        minus_one_unknown=minus_one_unknown,
    )
    return None if number is None else round(number)


def parse_time(value, field_name: str = "timestamp", *, epoch_unit: str = "auto") -> datetime:
    """Epoch seconds or milliseconds (numbers or digit strings; with `epoch_unit="auto"` below
    2^31 is seconds), or ISO-8601 (a time without offset is taken as UTC). Returns an aware
    UTC datetime between TIME_MIN and `latest_fix_time()`."""
    if isinstance(value, bool) or value is None or value == "":
        raise FixError(field_name, "A time is required.")
    parsed = None
    latest = latest_fix_time()
    if isinstance(value, int | float) or isinstance(value, str) and _NUMBER.fullmatch(value):
        number = parse_number(value, field_name)
        if number < 0:
            raise FixError(field_name, f"Not a valid epoch time: {value!r}.")
        auto_ms = epoch_unit == "auto" and number >= EPOCH_SECONDS_LIMIT
        seconds = number / 1000 if epoch_unit == "ms" or auto_ms else number
        if seconds > latest.timestamp():
            raise FixError(field_name, f"Epoch time out of range: {value!r}.")
        parsed = datetime.fromtimestamp(seconds, tz=UTC)
    elif isinstance(value, str) and len(value) <= 64 and value.isascii():
        text = value.strip()
        try:  # the C parser first (Python 3.11 reads "Z" and offsets); Django's regex after
            parsed = datetime.fromisoformat(text)
        except ValueError:
            try:
                parsed = parse_datetime(text)
            except ValueError:
                parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            if not TIME_MIN.year <= parsed.year <= latest.year:  # before the offset can overflow
                raise _outside_window(field_name, parsed)
            parsed = parsed.astimezone(UTC)
    if parsed is None:
        shown = value[:64] if isinstance(value, str) else value
        raise FixError(
            field_name, f"Use epoch seconds, epoch milliseconds or ISO-8601, not {shown!r}."
        )
    if not TIME_MIN <= parsed <= latest:
        raise _outside_window(field_name, parsed)
    return parsed


def _outside_window(field_name: str, parsed: datetime) -> FixError:
    return FixError(
        field_name,
        f"Must be after {TIME_MIN:%Y-%m-%d} and at most {settings.PING_MAX_AHEAD_S} s "
        f"ahead of the server clock (got {parsed.isoformat()}).",
    )


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
    raise FixError(field_name, f"true or false, not {str(value)[:40]!r}.")


def parse_lat_lon(lat, lon, names: tuple[str, str] = ("lat", "lon")) -> tuple[float, float]:
    lat_f = measure(lat, names[0], "lat", required=True)
    lon_f = measure(lon, names[1], "lon", required=True)
    if lat_f == 0 and lon_f == 0:
        # "Null Island": what a phone sends before it has a fix.
        raise FixError(names[0], "0,0 is not a position (no fix yet?).")
    return lat_f, lon_f


def parse_heading(value, field_name: str, *, minus_one_unknown: bool = False) -> float | None:
    number = measure(value, field_name, "heading_deg", minus_one_unknown=minus_one_unknown)
    return None if number is None else number % 360


def text_is_clean(value: str) -> bool:
    """No NUL character and no lone surrogate: what PostgreSQL can store in text and jsonb."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: str, field_name: str) -> str:
    """Refuse what PostgreSQL cannot store in text or jsonb: NUL characters and lone
    surrogates (JSON lets a sender write both as \\u escapes)."""
    if not text_is_clean(value):
        if "\x00" in value:
            raise FixError(field_name, "NUL characters are not allowed.")
        raise FixError(field_name, "Not valid Unicode (a lone surrogate).")
    return value


def check_json_text(value, field_name: str, depth: int = 0) -> None:
    """`check_text` on every string (keys too) of a JSON value, finite numbers only."""
    if depth > 20:
        raise FixError(field_name, "Nested too deeply.")
    if isinstance(value, str):
        check_text(value, field_name)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), field_name)
            check_json_text(item, field_name, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json_text(item, field_name, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise FixError(field_name, "A finite number is required.")


def bounded_attributes(attributes: dict, field_name: str | None = "attributes") -> dict:
    """Keep the protocol's extra attributes, but never more than a few KB per fix. Strings
    must be storable (`check_text`), numbers finite. `field_name` None: the attributes are
    the device's own fields (OwnTracks `tid`, Traccar `device_id`), an error names the key."""
    if not attributes:
        return {}
    for key, item in attributes.items():
        name = field_name or str(key)
        check_text(str(key), name)
        check_json_text(item, name, 1)
    kept, size = {}, 2
    for key in sorted(attributes):
        item = json.dumps({str(key)[:64]: attributes[key]}, default=str)
        if size + len(item) > settings.PING_MAX_ATTRIBUTES_BYTES:
            kept["_truncated"] = True
            break
        kept[str(key)[:64]] = json.loads(item)[str(key)[:64]]
        size += len(item)
    return kept
