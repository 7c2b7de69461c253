"""The OpenAPI description of a native fix (`POST /api/v1/ingest/pings`), built from the
validator's own tables (tracking/ingest/fixes.py BOUNDS, TIME_MIN) so the schema
cannot drift from what the parser accepts (docs/INGEST.md "Native fix fields")."""

from __future__ import annotations

from django.conf import settings

from tracking.ingest.fixes import BOUNDS, TIME_MIN

# Native field → (BOUNDS kind, description). Heading is taken modulo 360 after the check.
_MEASURES = {
    "accuracy": ("accuracy_m", "Horizontal accuracy, m."),
    "speed": ("speed_mps", "Speed, m/s."),
    "heading": ("heading_deg", "Course over ground, degrees (normalized to 0–360)."),
    "altitude": ("altitude_m", "Altitude, m."),
    "battery": ("battery_pct", "Battery level, %."),
}


def _bounded(kind: str, description: str, *, nullable: bool) -> dict:
    bound = BOUNDS[kind]
    schema = {
        "type": "number",
        "minimum": bound.minimum,
        "maximum": bound.maximum,
        "description": description,
    }
    if nullable:
        schema["nullable"] = True
    return schema


def _flag(description: str) -> dict:
    return {"type": "boolean", "nullable": True, "description": description}


def native_fix_schema() -> dict:
    properties = {
        "event_id": {
            "type": "string",
            "maxLength": 64,
            "description": "The device's id for this fix: a replay with the same id is a "
            "duplicate, not a new row.",
        },
        "time": {
            "oneOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "minimum": 0},
            ],
            "description": "ISO-8601 (UTC when no offset), or epoch seconds / milliseconds "
            f"(below 2^31: seconds); from {TIME_MIN.date()} to `PING_MAX_AHEAD_S` (a day) "
            "ahead of the server clock.",
        },
        "lat": _bounded("lat", "Latitude, degrees (0,0 is refused: no fix yet).", nullable=False),
        "lon": _bounded("lon", "Longitude, degrees.", nullable=False),
        **{
            name: _bounded(kind, description, nullable=True)
            for name, (kind, description) in _MEASURES.items()
        },
        "charging": _flag("The phone is charging."),
        "moving": _flag("The phone's motion sensor says it moves."),
        "mock": _flag("The fix comes from a mock location provider."),
        "attributes": {
            "type": "object",
            "additionalProperties": True,
            "description": "Extra device attributes, kept up to 2 KB.",
        },
    }
    return {
        "type": "object",
        "description": "One fix. Numbers may also be sent as ASCII digit strings. Unknown keys "
        "are refused.",
        "properties": properties,
        "required": ["time", "lat", "lon"],
        "additionalProperties": False,
    }


def ping_batch_schema() -> dict:
    fixes = {
        "type": "array",
        "items": native_fix_schema(),
        "minItems": 1,
        "maxItems": settings.PING_BATCH_MAX,
    }
    return {
        "oneOf": [
            fixes,
            {
                "type": "object",
                "properties": {"pings": fixes},
                "required": ["pings"],
                "additionalProperties": False,
            },
        ]
    }
