"""A configurable JSON mapping, for a carrier whose webhook is none of the built-in ones.

The feed's config says where things are (dotted paths; integers index lists):

```json
{"events_path": "data.events",
 "fields": {"event_id": "id", "barcode": "parcel.id", "status": "state.code",
            "reason": "state.reason", "occurred_at": "at", "lat": "geo.lat", "lon": "geo.lng",
            "note": "state.text"},
 "status_map": {"OUT": "out_for_delivery", "POD": "delivered", "NH": "attempt_failed",
                "LBL": null},
 "reason_map": {"R01": "not_home", "R02": "refused"},
 "timezone": "America/Santiago"}
```

`events_path` empty or absent: the body is one event, or a list of events. `fields.status`,
`fields.occurred_at` and one of `fields.barcode` / `fields.reference` are required. The status
map's values are scan types (null: a known code that records nothing), the reason map's are
failure reasons; both are checked when the feed is saved (`validate_config`).
"""

from __future__ import annotations

from carriers.feeds.adapters.base import (
    CarrierStatusEvent,
    as_location,
    as_text,
    as_time,
    dig,
    join,
    require_object,
    zone_of,
)
from carriers.feeds.errors import PayloadError

NAME = "generic_json"
TITLE = "Generic JSON (paths and maps in the feed's config)"
STATUS_MAP: dict[str, str | None] = {}
REASON_MAP: dict[str, str] = {}
FIELDS = (
    "event_id",
    "barcode",
    "reference",
    "status",
    "reason",
    "occurred_at",
    "lat",
    "lon",
    "note",
)


def validate_config(config: dict) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    events_path = config.get("events_path", "")
    if not isinstance(events_path, str):
        problems["config.events_path"] = ["A dotted path such as 'data.events' (or empty)."]
    fields = config.get("fields")
    if not isinstance(fields, dict):
        problems["config.fields"] = [
            "Map each field (status, occurred_at, barcode or reference, ...) to a dotted path."
        ]
        return problems
    for name, path in fields.items():
        if name not in FIELDS:
            problems[f"config.fields.{name}"] = [f"Unknown field; use: {', '.join(FIELDS)}."]
        elif not isinstance(path, str) or not path:
            problems[f"config.fields.{name}"] = ["A non-empty dotted path."]
    for name in ("status", "occurred_at"):
        if name not in fields:
            problems[f"config.fields.{name}"] = ["Required: where the event's value is."]
    if "barcode" not in fields and "reference" not in fields:
        problems["config.fields.barcode"] = ["Give the path of the barcode (or of the reference)."]
    if ("lat" in fields) != ("lon" in fields):
        problems["config.fields.lat"] = ["Give both lat and lon, or neither."]
    return problems


def parse(payload, *, config) -> list[CarrierStatusEvent]:
    events_path = config.get("events_path") or ""
    found = dig(payload, events_path) if events_path else payload
    if found is None:
        raise PayloadError("No events here.", path=events_path or "$")
    items = found if isinstance(found, list) else [found]
    base = events_path or ""
    zone = zone_of(config)
    return [
        _parse_item(
            item,
            config["fields"],
            path=join(base, i) if isinstance(found, list) else (base or "$"),
            zone=zone,
        )
        for i, item in enumerate(items)
    ]


def _parse_item(item, fields: dict, *, path: str, zone) -> CarrierStatusEvent:
    item = require_object(item, path=path)

    def value(name):
        return dig(item, fields[name]) if name in fields else None

    def where(name):
        return join(path, fields.get(name, name)) if path != "$" else fields.get(name, name)

    barcode = as_text(value("barcode"), path=where("barcode"))
    reference = as_text(value("reference"), path=where("reference"))
    if not barcode and not reference:
        raise PayloadError("The parcel's barcode (or reference) is missing.", path=where("barcode"))
    location = None
    if "lat" in fields:
        location = as_location(value("lat"), value("lon"), path=where("lat"))
    return CarrierStatusEvent(
        event_id=as_text(value("event_id"), path=where("event_id"), max_length=100),
        barcode=barcode,
        reference=reference,
        carrier_status_code=as_text(value("status"), path=where("status"), required=True),
        carrier_reason_code=as_text(value("reason"), path=where("reason")),
        occurred_at=as_time(value("occurred_at"), path=where("occurred_at"), zone=zone),
        location=location,
        note=as_text(value("note"), path=where("note"), max_length=500),
        raw=item,
    )
