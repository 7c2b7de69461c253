"""What a recipient does through their tracking link: delivery instructions, reschedule,
"I'm not home", a rating after delivery.

Every action:
- runs in the link's organization scope and one transaction, holding the shipment's row lock
  (so two taps of one button, or two tabs, serialize);
- is idempotent by `key`, the form's nonce: a second call with the same key changes nothing
  and answers like the first (a `CustomerAction` row per organization, kind and key);
- is validated (`tracking.errors.InvalidInput` naming the field, `Conflict` when the state
  does not allow it, e.g. rating before delivery) and rate-limited per link
  (`TRACKING_ACTIONS_PER_LINK` per hour, `TooManyAttempts`);
- records an audit row (`CustomerAction`: link, what, when, before and after; see its
  docstring for why that is not the chain of custody) and emits catalog events.

The caller (the tracking page) has resolved the link (`link_resolve`) and checked CSRF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date as Date
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from control_tower.errors import Conflict, TooManyAttempts
from control_tower.events import catalog, emit
from control_tower.ratelimit import rate_limited
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.scope import organization_scope
from tracking.errors import InvalidInput
from tracking.models import (
    ACTIVE_ROUTE_STATUSES,
    OPEN_STOP_STATUSES,
    CustomerAction,
    CustomerActionKind,
    DeliveryRating,
    Route,
    Shipment,
    Stop,
    StopShipment,
    StopStatus,
    TrackingLink,
)
from tracking.models import ShipmentStatus as S
from tracking.services.shipments import FINAL_STATUSES, shipment_transition
from tracking.services.stop_shipments import stop_shipments_set
from tracking.services.stops import stop_skip

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
INSTRUCTIONS_MAX = 1000
COMMENT_MAX = 1000
ACTION_WINDOW_S = 3600
# Control characters other than newline and tab have no place in a note a driver reads.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class RecipientActor(Actor):
    """The recipient, acting through one tracking link: what the status history and the
    custody chain name as the actor. It has no role, so `can()` grants nothing."""

    link_id: int | None = None

    @property
    def label(self) -> str:
        return f"recipient (tracking link {self.link_id})"


@dataclass(frozen=True)
class RescheduleOption:
    id: str  # "20261208-0900-1300"
    date: Date
    start: datetime  # aware, the organization's time zone
    end: datetime


def _clean_text(value, *, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput.on(field, "Must be text.")
    text = _CONTROL.sub("", value).strip()
    if len(text) > limit:
        raise InvalidInput.on(field, f"At most {limit} characters.")
    return text


def _check_key(key) -> str:
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise InvalidInput.on("key", "A form key of 8–64 letters, digits, - or _ is required.")
    return key


def _check_rate(link: TrackingLink) -> None:
    if rate_limited(
        "track-action",
        str(link.pk),
        limit=settings.TRACKING_ACTIONS_PER_LINK,
        window_s=ACTION_WINDOW_S,
    ):
        raise TooManyAttempts("Too many changes through this link; try again later.")


def _begin(link: TrackingLink, kind: str, key: str):
    """Lock the shipment and look for an earlier action with this key: `(shipment, earlier
    action or None)`. Must run inside `transaction.atomic` and the link's scope."""
    shipment = Shipment.objects.select_for_update(of=("self",)).get(pk=link.shipment_id)
    earlier = CustomerAction.objects.filter(kind=kind, key=key).first()
    if earlier is not None and earlier.shipment_id != shipment.pk:
        raise Conflict("This form key was already used.", code="key_reused")
    return shipment, earlier


def _record(link, shipment, kind: str, key: str, at: datetime, details: dict) -> CustomerAction:
    return CustomerAction.objects.create(
        organization_id=shipment.organization_id,
        shipment=shipment,
        link=link,
        kind=kind,
        key=key,
        occurred_at=at,
        details=details,
    )


def _open_stop_link(shipment: Shipment | int) -> StopShipment | None:
    """The shipment's place on an open route (one at most: tracking/services/stop_shipments.py)."""
    return (
        StopShipment.objects.filter(
            shipment_id=shipment.pk if isinstance(shipment, Shipment) else shipment,
            stop__status__in=OPEN_STOP_STATUSES,
            stop__route__status__in=ACTIVE_ROUTE_STATUSES,
        )
        .select_related("stop__route")
        .first()
    )


def _lock_route_and_stop(link: TrackingLink) -> None:
    """Lock the route and stop the shipment is on, before the shipment: the order stop events,
    reassignments and `stop_shipments_set` lock in, so a recipient's action and a driver's
    stop event never deadlock. The place is read again under the locks by the caller."""
    place = _open_stop_link(link.shipment_id)
    if place is not None:
        Route.objects.select_for_update(of=("self",)).filter(pk=place.stop.route_id).first()
        Stop.objects.select_for_update(of=("self",)).filter(pk=place.stop_id).first()


def _not_final(shipment: Shipment) -> None:
    if shipment.status in FINAL_STATUSES:
        raise Conflict(
            f"The shipment is already {shipment.get_status_display().lower()}.",
            code="shipment_final",
        )


# --- instructions ---------------------------------------------------------------------------


def customer_set_instructions(link: TrackingLink, *, text: str, key: str) -> Shipment:
    """Replace the shipment's delivery instructions (gate code, safe place, neighbour) with
    `text` (at most 1000 characters; empty clears them). Refused once the shipment is final.
    Emits `shipment.customer_updated` (field names only, never the text)."""
    key = _check_key(key)
    text = _clean_text(text, field="text", limit=INSTRUCTIONS_MAX)
    _check_rate(link)
    with organization_scope(link.organization), transaction.atomic():
        shipment, earlier = _begin(link, CustomerActionKind.INSTRUCTIONS, key)
        if earlier is not None:
            return shipment
        _not_final(shipment)
        at = timezone.now()
        before = shipment.delivery_instructions
        shipment.delivery_instructions = text
        shipment.save(update_fields=["delivery_instructions", "updated_at"])
        _record(
            link,
            shipment,
            CustomerActionKind.INSTRUCTIONS,
            key,
            at,
            {"before": before, "after": text},
        )
        emit(catalog.shipment_customer_updated(shipment, fields=["delivery_instructions"], at=at))
    return shipment


# --- reschedule -----------------------------------------------------------------------------


def _parse_hh_mm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def reschedule_policy_options(organization, *, now: datetime) -> list[RescheduleOption]:
    """Every window the organization's policy offers from tomorrow (its time zone) on."""
    zone = organization.zone
    today = timezone.localtime(now, zone).date()
    options = []
    for offset in range(1, organization.reschedule_days_ahead + 1):
        day = today + timedelta(days=offset)
        if day.weekday() not in organization.reschedule_weekdays:
            continue
        for start_text, end_text in organization.reschedule_windows:
            start = datetime.combine(day, _parse_hh_mm(start_text), tzinfo=zone)
            end = datetime.combine(day, _parse_hh_mm(end_text), tzinfo=zone)
            option_id = f"{day:%Y%m%d}-{start:%H%M}-{end:%H%M}"
            options.append(RescheduleOption(id=option_id, date=day, start=start, end=end))
    return options


def _reschedule_refusal(shipment: Shipment, place: StopShipment | None) -> str | None:
    """Why this shipment cannot be rescheduled now (None: it can)."""
    if shipment.status in FINAL_STATUSES:
        return f"The shipment is already {shipment.get_status_display().lower()}."
    if place is not None and place.stop.status != StopStatus.PENDING:
        return "The driver is already at the address."
    return None


def customer_reschedule_options(
    link: TrackingLink, *, now: datetime | None = None
) -> list[RescheduleOption]:
    """The windows this recipient may choose now: the organization's policy, or none when the
    shipment is final, the driver has arrived, or the policy offers none."""
    now = now or timezone.now()
    with organization_scope(link.organization):
        shipment = Shipment.objects.get(pk=link.shipment_id)
        if _reschedule_refusal(shipment, _open_stop_link(shipment)) is not None:
            return []
        return reschedule_policy_options(link.organization, now=now)


def customer_reschedule(link: TrackingLink, *, option_id: str, key: str) -> Shipment:
    """Move the delivery to the window `option_id` (one of `customer_reschedule_options`).

    If the shipment is on an open route, it is taken off its stop through the route services:
    `stop_shipments_set` (custody entry "taken_off_route", `route.changed`, ETA recompute),
    and a stop left with no parcel is skipped (`stop_skip`: `stop.status_changed`). A parcel
    out for delivery goes back to "at hub" (as when a route is cancelled) so it can be planned
    again. The promised window becomes the chosen one. Emits `shipment.rescheduled`.
    Refused (`Conflict`) once the driver has arrived or the shipment is final.
    """
    key = _check_key(key)
    if not isinstance(option_id, str):
        raise InvalidInput.on("option", "Choose one of the offered windows.")
    _check_rate(link)
    actor = RecipientActor(organization=link.organization, link_id=link.pk)
    with organization_scope(link.organization), transaction.atomic():
        _lock_route_and_stop(link)
        shipment, earlier = _begin(link, CustomerActionKind.RESCHEDULE, key)
        if earlier is not None:
            return shipment
        at = timezone.now()
        option = next(
            (o for o in reschedule_policy_options(link.organization, now=at) if o.id == option_id),
            None,
        )
        if option is None:
            raise InvalidInput.on("option", "Choose one of the offered windows.")
        place = _open_stop_link(shipment)
        refusal = _reschedule_refusal(shipment, place)
        if refusal is not None:
            raise Conflict(refusal, code="not_reschedulable")
        before = [shipment.promised_window_start, shipment.promised_window_end]
        stop = place.stop if place is not None else None
        if stop is not None:
            _take_off_stop(stop, shipment, actor)
            shipment.refresh_from_db()
            if shipment.status == S.OUT_FOR_DELIVERY:
                shipment = shipment_transition(
                    shipment=shipment,
                    to_status=S.AT_HUB,
                    actor=actor,
                    at=at,
                    source="customer",
                    note=f"Rescheduled by the recipient to {option.id}",
                ).shipment
        shipment.promised_window_start = option.start
        shipment.promised_window_end = option.end
        shipment.save(update_fields=["promised_window_start", "promised_window_end", "updated_at"])
        _record(
            link,
            shipment,
            CustomerActionKind.RESCHEDULE,
            key,
            at,
            {
                "option": option.id,
                "window_start": option.start.isoformat(),
                "window_end": option.end.isoformat(),
                "before": [v.isoformat() if v else None for v in before],
                "stop": stop.pk if stop else None,
                "route": stop.route.code if stop else None,
            },
        )
        emit(
            catalog.shipment_rescheduled(
                shipment,
                window_start=option.start,
                window_end=option.end,
                route_id=stop.route_id if stop else None,
                stop_id=stop.pk if stop else None,
                at=at,
            )
        )
    return shipment


def _take_off_stop(stop: Stop, shipment: Shipment, actor: RecipientActor) -> None:
    remaining = list(stop.shipments.exclude(pk=shipment.pk).order_by("pk"))
    stop_shipments_set(stop=stop, shipments=remaining, actor=actor)
    if not remaining:
        stop_skip(stop=stop, actor=actor, note="Recipient rescheduled the delivery")


# --- not home -------------------------------------------------------------------------------


def customer_not_home(link: TrackingLink, *, key: str) -> Shipment:
    """The recipient says nobody will be home: their pending stop on an open route gets
    `recipient_away_at`, which the driver's stop list and the console show. The plan does not
    change (the dispatcher decides: skip, reassign, or call). Emits `stop.recipient_away` and
    `route.changed` ("recipient"). Refused when the shipment is on no open route, or the
    driver has already arrived."""
    key = _check_key(key)
    _check_rate(link)
    with organization_scope(link.organization), transaction.atomic():
        _lock_route_and_stop(link)
        shipment, earlier = _begin(link, CustomerActionKind.NOT_HOME, key)
        if earlier is not None:
            return shipment
        _not_final(shipment)
        place = _open_stop_link(shipment)
        if place is None:
            raise Conflict("The delivery is not on a driver's route yet.", code="not_on_route")
        stop = (
            Stop.objects.select_for_update(of=("self",))
            .select_related("route")
            .get(pk=place.stop_id)
        )
        if stop.status != StopStatus.PENDING:
            raise Conflict("The driver is already at the address.", code="driver_arrived")
        at = timezone.now()
        stop.recipient_away_at = at
        stop.save(update_fields=["recipient_away_at", "updated_at"])
        _record(
            link,
            shipment,
            CustomerActionKind.NOT_HOME,
            key,
            at,
            {"stop": stop.pk, "route": stop.route.code},
        )
        emit(
            catalog.stop_recipient_away(
                stop, shipment=shipment, carrier_id=stop.route.carrier_id, at=at
            )
        )
        emit(catalog.route_changed(stop.route, reason="recipient"))
    return shipment


# --- rating ---------------------------------------------------------------------------------


def customer_rate(link: TrackingLink, *, stars: int, comment: str, key: str) -> DeliveryRating:
    """Rate a delivered shipment, once: 1–5 stars and an optional comment (at most 1000
    characters). Carrier and driver are those of the stop that delivered it (for the SLA
    reports). A second rating is refused (`Conflict`), a replay of the same key answers the
    first. Emits `shipment.rated`."""
    key = _check_key(key)
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise InvalidInput.on("stars", "Choose 1 to 5 stars.")
    comment = _clean_text(comment or "", field="comment", limit=COMMENT_MAX)
    _check_rate(link)
    with organization_scope(link.organization), transaction.atomic():
        shipment, earlier = _begin(link, CustomerActionKind.RATING, key)
        existing = DeliveryRating.objects.filter(shipment_id=shipment.pk).first()
        if earlier is not None and existing is not None:
            return existing
        if shipment.status != S.DELIVERED:
            raise Conflict("Only a delivered shipment can be rated.", code="not_delivered")
        if existing is not None:
            raise Conflict("This delivery has already been rated.", code="already_rated")
        delivered_by = (
            StopShipment.objects.filter(shipment_id=shipment.pk, stop__status=StopStatus.COMPLETED)
            .select_related("stop__route")
            .order_by("-stop__actual_departure", "-pk")
            .first()
        )
        route = delivered_by.stop.route if delivered_by is not None else None
        rating = DeliveryRating.objects.create(
            organization_id=shipment.organization_id,
            shipment=shipment,
            carrier_id=route.carrier_id if route else shipment.carrier_id,
            driver_id=route.driver_id if route else None,
            stars=stars,
            comment=comment,
            delivered_at=shipment.status_changed_at,
        )
        _record(
            link,
            shipment,
            CustomerActionKind.RATING,
            key,
            rating.created_at,
            {"rating": rating.pk, "stars": stars},
        )
        emit(catalog.shipment_rated(rating, shipment=shipment))
    return rating
