"""What each device protocol sends, turned into `Fix` objects (see shared PROTOCOLS.md).

- native: our driver app's JSON batch (`POST /api/v1/ingest/pings`);
- OsmAnd: query string or form body (Traccar Client before 9, many trackers);
- Traccar Client 9+ JSON: one object or an array, `-1` meaning unknown;
- OwnTracks HTTP mode: `_type: location` (others are acknowledged and ignored).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from django.conf import settings

from control_tower.json_input import JsonInputError, json_loads
from tracking.ingest.fixes import (
    _NUMBER,
    BOUNDS,
    KMH_TO_MPS,
    KNOTS_TO_MPS,
    MAX_INTEGER,
    TIME_MIN,
    Bound,
    Fix,
    FixError,
    bounded_attributes,
    check_text,
    latest_fix_time,
    measure,
    parse_battery,
    parse_bool,
    parse_heading,
    parse_lat_lon,
    parse_time,
    text_is_clean,
)

# Every protocol converts to our units and checks against the one table of bounds
# (fixes.BOUNDS) through `measure`; only the field names and units differ.


# ---------------------------------------------------------------------------------------------
# Native batch
# ---------------------------------------------------------------------------------------------

NATIVE_FIELDS = {
    "event_id",
    "time",
    "lat",
    "lon",
    "accuracy",
    "speed",
    "heading",
    "altitude",
    "battery",
    "charging",
    "moving",
    "mock",
    "attributes",
}


def parse_native(item) -> Fix:
    """`{"event_id": "…", "time": ISO or epoch, "lat", "lon", "accuracy" (m), "speed" (m/s),
    "heading" (deg), "altitude" (m), "battery" (%), "charging", "moving", "mock",
    "attributes": {…}}`. Unknown keys are refused, so a typo is not silently dropped."""
    if not isinstance(item, dict):
        raise FixError("non_field_errors", "Each fix must be a JSON object.")
    unknown = sorted(set(item) - NATIVE_FIELDS)
    if unknown:
        raise FixError(unknown[0], f"Unknown field (allowed: {', '.join(sorted(NATIVE_FIELDS))}).")
    event_id = item.get("event_id") or ""
    if not isinstance(event_id, str) or len(event_id) > 64:
        raise FixError("event_id", "A string of at most 64 characters.")
    check_text(event_id, "event_id")
    attributes = item.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise FixError("attributes", "A JSON object is expected.")
    lat, lon = parse_lat_lon(item.get("lat"), item.get("lon"))
    return Fix(
        fix_time=parse_time(item.get("time"), "time"),
        lat=lat,
        lon=lon,
        event_id=event_id,
        accuracy_m=measure(item.get("accuracy"), "accuracy", "accuracy_m"),
        speed_mps=measure(item.get("speed"), "speed", "speed_mps"),
        heading_deg=parse_heading(item.get("heading"), "heading"),
        altitude_m=measure(item.get("altitude"), "altitude", "altitude_m"),
        battery_pct=parse_battery(item.get("battery"), "battery"),
        charging=parse_bool(item.get("charging"), "charging"),
        moving=parse_bool(item.get("moving"), "moving"),
        mock=bool(parse_bool(item.get("mock"), "mock")),
        attributes=bounded_attributes(attributes),
    )


def parse_native_many(items: list) -> tuple[list[Fix], dict[str, dict]]:
    """`parse_native` on each item: (fixes, {index: {field: [message]}} for the bad ones).

    A batch of a thousand fixes spent ~35 µs per fix in `parse_native` (the general parsers
    accept strings, epochs, "-1", attributes…); what our driver app sends is plain JSON
    numbers, ISO times with an offset and no attributes. `_plain_native` takes that shape in a
    few microseconds and returns None for anything else, which then goes through
    `parse_native` itself: the same Fix, or the same error (tests/tracking/
    test_ingest_native_fast.py checks both on generated input)."""
    fixes, errors = [], {}
    latest = latest_fix_time()  # once per batch, not once per fix
    for index, item in enumerate(items):
        fix = _plain_native(item, latest)
        if fix is None:
            try:
                fix = parse_native(item)
            except FixError as exc:
                errors[str(index)] = {exc.field: [exc.message]}
                continue
        fixes.append(fix)
    return fixes, errors


_NUMBER_TYPES = (int, float)  # exactly: bool is an int subclass but not a number here
_NATIVE_MEASURES = (
    ("accuracy", BOUNDS["accuracy_m"]),
    ("speed", BOUNDS["speed_mps"]),
    ("heading", BOUNDS["heading_deg"]),
    ("altitude", BOUNDS["altitude_m"]),
    ("battery", BOUNDS["battery_pct"]),
)
_LAT, _LON = BOUNDS["lat"], BOUNDS["lon"]


def _plain_number(value, bound: Bound) -> float | None:
    """`measure`'s result for a JSON number inside `bound`, else `_NOT_PLAIN`."""
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            return _NOT_PLAIN
    elif kind is int:
        if abs(value) > MAX_INTEGER:
            return _NOT_PLAIN
        value = float(value)
    else:
        return _NOT_PLAIN
    value = value * 1.0  # as measure(): number * scale
    if not bound.minimum <= value <= bound.maximum:
        return _NOT_PLAIN
    return value


_NOT_PLAIN = object()


def _plain_native(item, latest: datetime) -> Fix | None:
    """The Fix `parse_native(item)` would return, if `item` has the plain shape (see
    `parse_native_many`); None otherwise (including every invalid item)."""
    if type(item) is not dict or not item.keys() <= NATIVE_FIELDS or item.get("attributes"):
        return None
    event_id = item.get("event_id") or ""
    if (
        type(event_id) is not str
        or len(event_id) > 64
        or not event_id.isascii()
        or "\x00" in event_id
    ):
        return None
    when = item.get("time")
    if type(when) is not str or len(when) > 64 or not when.isascii() or _NUMBER.fullmatch(when):
        return None  # (a string of digits is an epoch time: parse_time's case)
    try:
        parsed = datetime.fromisoformat(when)
    except ValueError:
        return None
    # parse_time's checks, in its order: an offset (naive times go the long way), the year
    # window before converting, then the exact window.
    if parsed.tzinfo is None or not TIME_MIN.year <= parsed.year <= latest.year:
        return None
    parsed = parsed.astimezone(UTC)
    if not TIME_MIN <= parsed <= latest:
        return None
    lat = _plain_number(item.get("lat"), _LAT)
    lon = _plain_number(item.get("lon"), _LON)
    if lat is _NOT_PLAIN or lon is _NOT_PLAIN or (lat == 0 and lon == 0):
        return None
    measured = []
    for name, bound in _NATIVE_MEASURES:
        value = item.get(name)
        if value is None:
            measured.append(None)
            continue
        value = _plain_number(value, bound)
        if value is _NOT_PLAIN:
            return None
        measured.append(value)
    accuracy, speed, heading, altitude, battery = measured
    flags = []
    for name in ("charging", "moving", "mock"):
        value = item.get(name)
        if value is not None and type(value) is not bool:
            return None
        flags.append(value)
    charging, moving, mock = flags
    return Fix(
        fix_time=parsed,
        lat=lat,
        lon=lon,
        event_id=event_id,
        accuracy_m=accuracy,
        speed_mps=speed,
        heading_deg=None if heading is None else heading % 360,
        altitude_m=altitude,
        battery_pct=None if battery is None else round(battery),
        charging=charging,
        moving=moving,
        mock=bool(mock),
        attributes={},
    )


# ---------------------------------------------------------------------------------------------
# OsmAnd (query string / form)
# ---------------------------------------------------------------------------------------------

OSMAND_KNOWN = {
    "id",
    "deviceid",
    "timestamp",
    "lat",
    "lon",
    "location",
    "speed",
    "bearing",
    "heading",
    "altitude",
    "accuracy",
    "batt",
    "charge",
    "valid",
    "mock",
}


def parse_osmand(params: dict[str, str], *, now: datetime) -> Fix:
    """Traccar's OsmAnd decoder rules: `id`/`deviceid` (advisory here: the token in the URL is
    the credential), `timestamp` (epoch s/ms or ISO; missing = server time), `lat`/`lon` or
    `location=lat,lon`, `speed` in knots, `bearing`/`heading`, `altitude`, `accuracy`, `hdop`,
    `batt` (%), `charge`, `valid`; every other key is kept as an attribute."""
    if not text_is_clean("".join(params) + "".join(params.values())):
        for key, value in params.items():  # only to name the field
            check_text(str(key), "attributes")
            check_text(value, key)
    if not (params.get("id") or params.get("deviceid")):
        raise FixError("id", "The device id (id or deviceid) is required.")
    lat, lon = params.get("lat"), params.get("lon")
    if (lat is None or lon is None) and params.get("location"):
        parts = params["location"].split(",")
        if len(parts) != 2:
            raise FixError("location", "Use location=lat,lon.")
        lat, lon = parts
    lat_f, lon_f = parse_lat_lon(lat, lon)
    timestamp = params.get("timestamp")
    attributes = {k: v for k, v in params.items() if k not in OSMAND_KNOWN}
    attributes["device_id"] = params.get("id") or params.get("deviceid")
    valid = parse_bool(params.get("valid"), "valid")
    return Fix(
        fix_time=parse_time(timestamp) if timestamp not in (None, "") else now,
        lat=lat_f,
        lon=lon_f,
        accuracy_m=measure(params.get("accuracy"), "accuracy", "accuracy_m"),
        speed_mps=measure(params.get("speed"), "speed", "speed_mps", scale=KNOTS_TO_MPS),
        heading_deg=parse_heading(params.get("bearing", params.get("heading")), "bearing"),
        altitude_m=measure(params.get("altitude"), "altitude", "altitude_m"),
        battery_pct=parse_battery(params.get("batt"), "batt"),
        charging=parse_bool(params.get("charge"), "charge"),
        mock=bool(parse_bool(params.get("mock"), "mock")),
        valid=valid is not False,
        attributes=bounded_attributes(attributes),
    )


# ---------------------------------------------------------------------------------------------
# Traccar Client 9+ JSON
# ---------------------------------------------------------------------------------------------


def parse_traccar_json(payload) -> list[Fix]:
    """`{"location": {"timestamp", "coords": {...}, "is_moving", "battery": {...}, ...},
    "device_id": "…"}`, or an array of those. Speed m/s; -1 = unknown (speed, heading,
    accuracy, altitude, battery level). No event id: the key is (device, timestamp)."""
    items = _capped(payload)
    fixes = []
    for index, item in enumerate(items):
        try:
            fixes.append(_traccar_item(item))
        except FixError as exc:
            if isinstance(payload, list):
                exc.field = f"{index}.{exc.field}"
            raise
    return fixes


def _capped(payload) -> list:
    """One message, or an array of at most PING_BATCH_MAX (the native batch's cap)."""
    if not isinstance(payload, list):
        return [payload]
    if len(payload) > settings.PING_BATCH_MAX:
        raise FixError("body", f"At most {settings.PING_BATCH_MAX} fixes per request.")
    return payload


def _traccar_item(item) -> Fix:
    if not isinstance(item, dict) or not isinstance(item.get("location"), dict):
        raise FixError("location", "A location object is required.")
    location = item["location"]
    coords = location.get("coords")
    if not isinstance(coords, dict):
        raise FixError("location.coords", "A coords object is required.")
    lat, lon = parse_lat_lon(coords.get("latitude"), coords.get("longitude"))
    battery = location.get("battery") if isinstance(location.get("battery"), dict) else {}
    activity = location.get("activity") if isinstance(location.get("activity"), dict) else {}
    attributes = {
        "device_id": item.get("device_id"),
        "event": location.get("event"),
        "odometer": measure(location.get("odometer"), "location.odometer", "odometer_m"),
        "activity": activity.get("type"),
        "extras": location.get("extras") or None,
    }
    return Fix(
        fix_time=parse_time(location.get("timestamp"), "location.timestamp"),
        lat=lat,
        lon=lon,
        accuracy_m=measure(
            coords.get("accuracy"), "coords.accuracy", "accuracy_m", minus_one_unknown=True
        ),
        speed_mps=measure(coords.get("speed"), "coords.speed", "speed_mps", minus_one_unknown=True),
        heading_deg=parse_heading(coords.get("heading"), "coords.heading", minus_one_unknown=True),
        altitude_m=measure(coords.get("altitude"), "coords.altitude", "altitude_m"),
        battery_pct=parse_battery(
            battery.get("level"), "battery.level", fraction=True, minus_one_unknown=True
        ),
        charging=parse_bool(battery.get("is_charging"), "battery.is_charging"),
        moving=parse_bool(location.get("is_moving"), "location.is_moving"),
        mock=bool(parse_bool(location.get("mock", coords.get("mock")), "mock")),
        attributes=bounded_attributes(
            {k: v for k, v in attributes.items() if v is not None}, field_name=None
        ),
    )


# ---------------------------------------------------------------------------------------------
# OwnTracks (HTTP mode)
# ---------------------------------------------------------------------------------------------


def parse_owntracks(payload) -> list[Fix]:
    """Location messages become fixes; every other `_type` (lwt, transition, waypoint, card,
    status, …) is acknowledged and ignored. `tst` epoch seconds, `vel` km/h, `cog` degrees,
    `acc`/`alt` metres, `batt` %, `bs` 0 unknown / 1 unplugged / 2 charging / 3 full."""
    messages = _capped(payload)
    fixes = []
    for message in messages:
        if not isinstance(message, dict):
            raise FixError("_type", "A JSON object is expected.")
        if message.get("_type") != "location":
            continue
        lat, lon = parse_lat_lon(message.get("lat"), message.get("lon"))
        charging = {1: False, 2: True, 3: True}.get(message.get("bs"))
        attributes = {
            key: message[key]
            for key in ("tid", "t", "m", "conn", "SSID", "BSSID", "inregions", "topic")
            if key in message
        }
        tst = message.get("tst")
        if tst in (None, "", 0):
            raise FixError("tst", "The fix time (tst, epoch seconds) is required.")
        fixes.append(
            Fix(
                fix_time=parse_time(tst, "tst", epoch_unit="s"),
                lat=lat,
                lon=lon,
                accuracy_m=measure(message.get("acc"), "acc", "accuracy_m"),
                speed_mps=measure(
                    message.get("vel"), "vel", "speed_mps", scale=KMH_TO_MPS, minus_one_unknown=True
                ),
                heading_deg=parse_heading(message.get("cog"), "cog", minus_one_unknown=True),
                altitude_m=measure(message.get("alt"), "alt", "altitude_m"),
                battery_pct=parse_battery(message.get("batt"), "batt"),
                charging=charging,
                attributes=bounded_attributes(attributes, field_name=None),
            )
        )
    return fixes


# ---------------------------------------------------------------------------------------------
# From an HTTP request (the ASGI fast path, tracking/ingest/fast.py)
# ---------------------------------------------------------------------------------------------

MAX_BODY_BYTES = 1024 * 1024


def json_body(body: bytes):
    """The API's strict loader (no NaN or Infinity, bounded nesting) on a capped body."""
    if len(body) > MAX_BODY_BYTES:
        raise FixError("body", "The body is larger than 1 MB.")
    try:
        return json_loads(body or b"null")
    except JsonInputError as exc:
        raise FixError("body", str(exc)) from None


def osmand_request_fixes(
    *, method: str, content_type: str, query: dict, form: dict, body: bytes, now: datetime
) -> tuple[str, list[Fix]]:
    """(source, fixes) of a request to the OsmAnd endpoint: Traccar JSON when the body is
    JSON, else the OsmAnd parameters from the query string, or from the form when the query
    is empty."""
    from tracking.models import PingSource

    if method == "POST" and content_type == "application/json":
        return PingSource.TRACCAR_JSON, parse_traccar_json(json_body(body))
    return PingSource.OSMAND, [parse_osmand(query or form, now=now)]
