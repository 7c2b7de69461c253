"""The platform's own carrier event format (docs/CARRIER_FEEDS.md, "Native format").

```json
{"events": [{"event_id": "evt-1", "barcode": "AND-0001", "status": "attempt_failed",
             "reason": "not_home", "occurred_at": "2026-12-06T15:04:05-03:00",
             "location": {"lat": -29.95, "lon": -71.33}, "note": "No one at the door"}]}
```

Status codes are the platform's scan types, reason codes its failure reasons: the mapping is
the identity, and anything else is flagged (a carrier on a newer version of the format).
"""

from __future__ import annotations

from carriers.feeds.adapters.base import (
    CarrierStatusEvent,
    as_location,
    as_text,
    as_time,
    join,
    require_list,
    require_object,
)
from carriers.feeds.errors import PayloadError
from tracking.models import FailureReason, ScanType

NAME = "native"
TITLE = "Native (the platform's own JSON)"
STATUS_MAP: dict[str, str | None] = {value: value for value in ScanType.values}
REASON_MAP: dict[str, str] = {value: value for value in FailureReason.values}


def parse(payload, *, config) -> list[CarrierStatusEvent]:
    body = require_object(payload, path="$")
    events = body.get("events")
    if events is None:
        raise PayloadError("Send the events as a list under 'events'.", path="events")
    return [
        parse_item(item, path=join("events", i))
        for i, item in enumerate(require_list(events, path="events"))
    ]


def parse_item(item, *, path: str) -> CarrierStatusEvent:
    item = require_object(item, path=path)
    barcode = as_text(item.get("barcode"), path=join(path, "barcode"))
    reference = as_text(item.get("reference"), path=join(path, "reference"))
    if not barcode and not reference:
        raise PayloadError(
            "Give the parcel's barcode (or its reference).", path=join(path, "barcode")
        )
    location = item.get("location")
    if location is not None:
        location = require_object(location, path=join(path, "location"))
        location = as_location(
            location.get("lat"), location.get("lon"), path=join(path, "location")
        )
    return CarrierStatusEvent(
        event_id=as_text(item.get("event_id"), path=join(path, "event_id"), max_length=100),
        barcode=barcode,
        reference=reference,
        carrier_status_code=as_text(item.get("status"), path=join(path, "status"), required=True),
        carrier_reason_code=as_text(item.get("reason"), path=join(path, "reason")),
        occurred_at=as_time(item.get("occurred_at"), path=join(path, "occurred_at")),
        location=location,
        note=as_text(item.get("note"), path=join(path, "note"), max_length=500),
        raw=item,
    )
