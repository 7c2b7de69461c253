"""The adapter interface: pure functions from a carrier's payload to platform scan types and
the reason taxonomy (Karrio style: parsing and mapping, no I/O, tested on recorded payloads).

An adapter is a module with:

- `NAME` and `TITLE`;
- `parse(payload, *, config) -> list[CarrierStatusEvent]`: reads the decoded JSON body and
  raises `PayloadError` naming the JSON path of the first problem;
- `STATUS_MAP` (carrier status code -> `ScanType` value, or None for "known, no scan") and
  `REASON_MAP` (carrier reason code -> `FailureReason` value);
- optionally `status_candidates(code) -> list[str]`: the keys to try in order (AfterShip
  falls back from a subtag `AttemptFail_002` to its tag `AttemptFail`).

`normalize(event, mapping)` is shared: the feed's own `status_map` / `reason_map` (its config)
override the adapter's tables, so a code first seen in production is fixed by editing the
feed, and its flagged events are then re-processed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.dateparse import parse_datetime

from carriers.feeds.errors import PayloadError
from tracking.models import FailureReason, ScanType

UNKNOWN = "unknown"
# Scan types whose reason matters: the scan service needs one for a failed attempt, and an
# exception's reason is what the scorecards count.
REASON_SCAN_TYPES = frozenset({ScanType.ATTEMPT_FAILED, ScanType.EXCEPTION})


@dataclass(frozen=True)
class CarrierStatusEvent:
    """One status event as the carrier said it (codes kept as sent)."""

    event_id: str
    barcode: str
    reference: str
    carrier_status_code: str
    carrier_reason_code: str
    occurred_at: dt.datetime  # aware
    location: tuple[float, float] | None  # (lon, lat)
    note: str
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class NormalizedEvent:
    """The event in platform terms. `scan_type` None with `flagged` False: a code the mapping
    knows and deliberately ignores (e.g. "label created")."""

    scan_type: str | None
    reason_code: str  # a FailureReason value, "" (none needed) or "unknown"
    flagged: bool
    detail: str


@dataclass(frozen=True)
class FeedMapping:
    status_map: Mapping[str, str | None]
    reason_map: Mapping[str, str]
    status_candidates: Callable[[str], list[str]] = field(default=lambda code: [code])


def normalize(event: CarrierStatusEvent, mapping: FeedMapping) -> NormalizedEvent:
    """The platform scan type and reason of `event`; an unknown status code, or an unknown
    reason on a failed attempt or exception, is flagged (kept, not applied)."""
    code = event.carrier_status_code
    found = next((k for k in mapping.status_candidates(code) if k in mapping.status_map), None)
    if found is None:
        return NormalizedEvent(None, "", True, f"Unknown status code {code!r}: add it to the map.")
    scan_type = mapping.status_map[found]
    if scan_type is None:
        return NormalizedEvent(None, "", False, f"Status {code!r} is mapped to no scan.")
    if scan_type not in REASON_SCAN_TYPES:
        return NormalizedEvent(scan_type, "", False, "")
    reason_code = event.carrier_reason_code
    if not reason_code:
        # No reason sent: a failed attempt still needs one for the scan service.
        reason = FailureReason.OTHER if scan_type == ScanType.ATTEMPT_FAILED else ""
        return NormalizedEvent(scan_type, reason, False, "")
    reason = mapping.reason_map.get(reason_code)
    if reason is None:
        return NormalizedEvent(
            scan_type, UNKNOWN, True, f"Unknown reason code {reason_code!r}: add it to the map."
        )
    return NormalizedEvent(scan_type, reason, False, "")


# --- helpers for adapters ----------------------------------------------------------------


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return key if path in ("", "$") else f"{path}.{key}"


def dig(obj, dotted: str, *, path: str = "$"):
    """The value at `dotted` ("data.events", "parcel.id", "checkpoints.-1.tag": integers index
    lists, negative from the end) inside `obj`, or None when any step is missing."""
    if not dotted:
        return obj
    for step in dotted.split("."):
        if isinstance(obj, list):
            try:
                obj = obj[int(step)]
            except (ValueError, IndexError):
                return None
        elif isinstance(obj, dict):
            obj = obj.get(step)
        else:
            return None
        if obj is None:
            return None
    return obj


def as_text(value, *, path: str, required: bool = False, max_length: int = 64) -> str:
    if value is None or value == "":
        if required:
            raise PayloadError("This field is required.", path=path)
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError("Must be a string.", path=path)
    text = str(value).strip()
    if len(text) > max_length:
        raise PayloadError(f"At most {max_length} characters.", path=path)
    return text


def zone_of(config: Mapping) -> dt.tzinfo:
    name = config.get("timezone") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PayloadError(
            f"Unknown time zone {name!r} in the feed.", path="config.timezone"
        ) from exc


def as_time(value, *, path: str, zone: dt.tzinfo | None = None) -> dt.datetime:
    """An aware time from ISO-8601 text or a Unix timestamp (seconds). Text without an offset
    is read in `zone` (the feed's `timezone`) when given, refused otherwise."""
    if isinstance(value, bool) or value is None or value == "":
        raise PayloadError("A time is required (ISO-8601 with offset).", path=path)
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise PayloadError(f"Not an ISO-8601 time: {value!r}.", path=path)
    else:
        raise PayloadError("Must be an ISO-8601 string or a Unix timestamp.", path=path)
    if parsed.tzinfo is None:
        if zone is None:
            raise PayloadError("The time needs a UTC offset (e.g. +00:00).", path=path)
        parsed = parsed.replace(tzinfo=zone)
    return parsed


def as_location(lat, lon, *, path: str) -> tuple[float, float] | None:
    if lat in (None, "") and lon in (None, ""):
        return None
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError) as exc:
        raise PayloadError("Latitude and longitude must be numbers.", path=path) from exc
    if not (-90 <= lat_f <= 90 and -180 <= lon_f <= 180):
        raise PayloadError("Latitude or longitude out of range.", path=path)
    return (lon_f, lat_f)


def require_object(value, *, path: str) -> dict:
    if not isinstance(value, dict):
        raise PayloadError("Must be a JSON object.", path=path)
    return value


def require_list(value, *, path: str) -> list:
    if not isinstance(value, list):
        raise PayloadError("Must be a JSON array.", path=path)
    return value
