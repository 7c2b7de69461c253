"""AfterShip tracking webhooks (`tracking_update`), as AfterShip documents them:

- webhook body: https://www.aftership.com/docs/tracking/2025-01/webhook/webhook-specifications
  (`ts`, `event`, `event_id` (UUID v4), `is_tracking_first_tag`, `msg`: the tracking);
- tracking object: `msg.tracking_number`, `msg.slug`, `msg.order_id`, `msg.tag`, `msg.subtag`,
  `msg.subtag_message`, `msg.checkpoints[]` (`checkpoint_time`, `tag`, `subtag`, `message`,
  `location`, `coordinates`);
- delivery statuses (tags): https://www.aftership.com/docs/tracking/2025-01/enum/delivery-statuses
- sub-statuses (subtags): https://www.aftership.com/docs/tracking/enum/delivery-sub-statuses

One webhook is one event: the tracking's current tag/subtag, dated by its latest checkpoint
(else `ts`). The subtag is both the carrier status code (the tag is the fallback key) and, for
failed attempts and exceptions, the reason code. `checkpoint_time` may come without an offset
(the checkpoint's local time): the feed's `timezone` config reads it.
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
    zone_of,
)
from carriers.feeds.errors import PayloadError
from tracking.models import FailureReason as R
from tracking.models import ScanType as T

NAME = "aftership"
TITLE = "AfterShip tracking webhook (tracking_update)"
# https://www.aftership.com/docs/tracking/webhook/webhook-signature
SIGNATURE_HEADER = "aftership-hmac-sha256"

STATUS_MAP: dict[str, str | None] = {
    # Tags (the fallback when a subtag is not listed).
    "Pending": None,
    "InfoReceived": None,
    "InTransit": None,
    "OutForDelivery": T.OUT_FOR_DELIVERY,
    "AttemptFail": T.ATTEMPT_FAILED,
    "Delivered": T.DELIVERED,
    "AvailableForPickup": T.ATTEMPT_FAILED,
    "Exception": T.EXCEPTION,
    "Expired": None,
    # Subtags that mean more than their tag.
    "InTransit_002": T.PICKED_UP,  # acceptance scan
    "InTransit_003": T.ARRIVED_AT_HUB,  # arrival scan
    "Exception_002": T.ATTEMPT_FAILED,  # customer moved
    "Exception_003": T.ATTEMPT_FAILED,  # customer refused delivery
    "Exception_007": T.ATTEMPT_FAILED,  # incorrect address
    "Exception_008": T.ATTEMPT_FAILED,  # pick up missed
    "Exception_010": T.RETURNED,  # returning to sender
    "Exception_011": T.RETURNED,  # returned to sender
}
REASON_MAP: dict[str, str] = {
    "AttemptFail_001": R.OTHER,  # failed attempt, no reason given
    "AttemptFail_002": R.NOT_HOME,  # addressee not available
    "AttemptFail_003": R.ACCESS_DENIED,  # business closed
    "AvailableForPickup_001": R.NOT_HOME,  # left at a pickup point
    "Exception_001": R.OTHER,
    "Exception_002": R.ADDRESS_NOT_FOUND,
    "Exception_003": R.REFUSED,
    "Exception_004": R.CUSTOMS,
    "Exception_005": R.OTHER,  # delayed, external factors
    "Exception_006": R.OTHER,  # held for payment
    "Exception_007": R.ADDRESS_NOT_FOUND,
    "Exception_008": R.NOT_HOME,
    "Exception_009": R.OTHER,  # rejected by carrier
    "Exception_012": R.DAMAGED,
    "Exception_013": R.LOST,
}


def status_candidates(code: str) -> list[str]:
    return [code, code.split("_", 1)[0]] if "_" in code else [code]


def parse(payload, *, config) -> list[CarrierStatusEvent]:
    body = require_object(payload, path="$")
    event = as_text(body.get("event"), path="event", required=True)
    if event != "tracking_update":
        raise PayloadError(
            f"Only 'tracking_update' webhooks carry statuses (got {event!r}).", path="event"
        )
    msg = require_object(body.get("msg"), path="msg")
    tracking_number = as_text(msg.get("tracking_number"), path="msg.tracking_number", required=True)
    tag = as_text(msg.get("tag"), path="msg.tag", required=True)
    subtag = as_text(msg.get("subtag"), path="msg.subtag")
    checkpoints = msg.get("checkpoints") or []
    require_list(checkpoints, path="msg.checkpoints")
    latest = None
    if checkpoints:
        index = len(checkpoints) - 1
        latest_path = join("msg.checkpoints", index)
        latest = require_object(checkpoints[index], path=latest_path)
    zone = zone_of(config)
    if latest is not None and latest.get("checkpoint_time"):
        occurred_at = as_time(
            latest["checkpoint_time"], path=join(latest_path, "checkpoint_time"), zone=zone
        )
    else:
        occurred_at = as_time(body.get("ts"), path="ts")
    location = None
    note = as_text(msg.get("subtag_message"), path="msg.subtag_message", max_length=500)
    if latest is not None:
        coordinates = latest.get("coordinates") or []
        if isinstance(coordinates, list) and len(coordinates) == 2:
            # AfterShip sends [latitude, longitude].
            location = as_location(
                coordinates[0], coordinates[1], path=join(latest_path, "coordinates")
            )
        message = as_text(latest.get("message"), path=join(latest_path, "message"), max_length=500)
        note = message or note
    code = subtag or tag
    return [
        CarrierStatusEvent(
            event_id=as_text(body.get("event_id"), path="event_id", max_length=100),
            barcode=tracking_number,
            reference="",
            carrier_status_code=code,
            carrier_reason_code=subtag
            if tag in ("AttemptFail", "Exception", "AvailableForPickup")
            else "",
            occurred_at=occurred_at,
            location=location,
            note=note,
            raw=body,
        )
    ]
