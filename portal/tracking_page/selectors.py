"""The tracking page's view model: what one recipient sees of one shipment.

`tracking_state(shipment=..., organization=..., language=...)` returns one plain, JSON-ready
dict that the server-rendered page, the polling endpoint and the live socket all use, so the
three never disagree. Texts are already translated (the recipient's language) and times are
in the organization's time zone. Positions pass through `privacy` (docs/TRACKING_PAGE.md):
the caller gets the vehicle's exact position only when the rules allow it.

Runs inside `organization_scope(shipment.organization)`; a fixed handful of queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from control_tower.times import iso
from portal.tracking_page import privacy
from tracking.eta_window import honest_window
from tracking.models import (
    ACTIVE_ROUTE_STATUSES,
    OPEN_STOP_STATUSES,
    CustomerAction,
    CustomerActionKind,
    DeliveryRating,
    DevicePosition,
    FailureReason,
    PodFileKind,
    PodOutcome,
    ProofOfDelivery,
    RouteStatus,
    SafePlace,
    Shipment,
    ShipmentEvent,
    ShipmentStatus,
    Stop,
    StopStatus,
)
from tracking.route_summary import newest_by, positions

STATE_VERSION = 1
S = ShipmentStatus


def status_label(status: str) -> str:
    """The status in plain words, as the recipient reads it."""
    labels = {
        S.INFO_RECEIVED: _("Order received"),
        S.AT_HUB: _("At our depot"),
        S.OUT_FOR_DELIVERY: _("Out for delivery"),
        S.ATTEMPT_FAILED: _("Delivery attempt failed"),
        S.DELIVERED: _("Delivered"),
        S.EXCEPTION: _("There is a problem with your parcel"),
        S.RETURNED: _("Returned to the sender"),
        S.CANCELLED: _("Cancelled"),
    }
    return labels.get(status, status)


def failure_label(reason: str) -> str:
    labels = {
        FailureReason.NOT_HOME: _("Nobody was home"),
        FailureReason.REFUSED: _("The parcel was refused"),
        FailureReason.ADDRESS_NOT_FOUND: _("The driver could not find the address"),
        FailureReason.ACCESS_DENIED: _("The driver could not get into the building"),
        FailureReason.DAMAGED: _("The parcel was damaged"),
        FailureReason.OUT_OF_TIME: _("The driver ran out of time today"),
        FailureReason.OTHER: _("The driver could not deliver it"),
    }
    return labels.get(reason, _("The driver could not deliver it"))


# ---------------------------------------------------------------------------------------------
# Formatting (the recipient's language, the organization's time zone)
# ---------------------------------------------------------------------------------------------


def local_time(value: datetime, zone) -> str:
    return formats.time_format(value.astimezone(zone), "TIME_FORMAT")


def local_day(value: datetime, *, zone, now: datetime) -> str:
    """ "today", "tomorrow" or a date like "Tuesday 8 December"."""
    day = value.astimezone(zone).date()
    today = now.astimezone(zone).date()
    if day == today:
        return _("today")
    if day == today + timedelta(days=1):
        return _("tomorrow")
    return formats.date_format(value.astimezone(zone), _("l j F"))


def local_moment(value: datetime, *, zone, now: datetime) -> str:
    """ "today at 14:10", "tomorrow at 9:00", …"""
    return _("%(day)s at %(time)s") % {
        "day": local_day(value, zone=zone, now=now),
        "time": local_time(value, zone),
    }


def minutes_ago_text(minutes: int) -> str:
    """ "Last seen 7 minutes ago", in hours from two hours on and in days from two days on:
    "21,289 minutes" says nothing a person can use."""
    if minutes >= 2 * 24 * 60:
        n = minutes // (24 * 60)
        return ngettext("Last seen %(n)d day ago", "Last seen %(n)d days ago", n) % {"n": n}
    if minutes >= 120:
        n = minutes // 60
        return ngettext("Last seen %(n)d hour ago", "Last seen %(n)d hours ago", n) % {"n": n}
    return ngettext("Last seen %(n)d minute ago", "Last seen %(n)d minutes ago", minutes) % {
        "n": minutes
    }


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StopContext:
    stop: Stop | None
    stops_before: int | None  # open stops of the running route before this one


def current_stop(shipment: Shipment) -> Stop | None:
    """The stop that delivers the shipment now: an open stop of an active route (the newest),
    else the last stop it was on (the failed or completed attempt)."""
    stops = (
        Stop.objects.filter(stop_shipments__shipment_id=shipment.pk)
        .select_related("route", "route__driver")
        .order_by("-route__date", "-pk")
    )
    fallback = None
    for stop in stops:
        if stop.status in OPEN_STOP_STATUSES and stop.route.status in ACTIVE_ROUTE_STATUSES:
            return stop
        if fallback is None and stop.status != StopStatus.CANCELLED:
            fallback = stop
    return fallback


def stop_context(shipment: Shipment) -> StopContext:
    stop = current_stop(shipment)
    if stop is None:
        return StopContext(stop=None, stops_before=None)
    stops_before = None
    if stop.status in OPEN_STOP_STATUSES and stop.route.status in ACTIVE_ROUTE_STATUSES:
        # Only a count: where those stops are is none of this recipient's business.
        stops_before = Stop.objects.filter(
            route_id=stop.route_id, sequence__lt=stop.sequence, status__in=OPEN_STOP_STATUSES
        ).count()
    return StopContext(stop=stop, stops_before=stops_before)


def vehicle_fix(stop: Stop) -> dict | None:
    """The newest good position of the route's vehicle or driver's phone, or None."""
    route = stop.route
    if route.vehicle_id is None and route.driver_id is None:
        return None
    rows = positions(
        DevicePosition.objects.all(),
        vehicle_ids=[route.vehicle_id] if route.vehicle_id else [],
        driver_ids=[route.driver_id] if route.driver_id else [],
    )
    found = [
        row
        for row in (
            newest_by(rows, "vehicle").get(route.vehicle_id),
            newest_by(rows, "driver").get(route.driver_id),
        )
        if row is not None
    ]
    return max(found, key=lambda row: row["fix_time"]) if found else None


def first_name(full_name: str) -> str:
    return full_name.strip().split(" ")[0] if full_name.strip() else ""


# ---------------------------------------------------------------------------------------------
# The view model
# ---------------------------------------------------------------------------------------------

TIMELINE = (S.INFO_RECEIVED, S.AT_HUB, S.OUT_FOR_DELIVERY)
FINAL_STEP = {
    S.DELIVERED: "done",
    S.ATTEMPT_FAILED: "failed",
    S.EXCEPTION: "failed",
    S.RETURNED: "failed",
    S.CANCELLED: "failed",
}


def _timeline(shipment: Shipment, *, zone, now: datetime, rescheduled_to: str | None) -> list:
    reached: dict[str, datetime] = {}
    for to_status, occurred_at in ShipmentEvent.objects.filter(shipment_id=shipment.pk).values_list(
        "to_status", "occurred_at"
    ):
        reached[to_status] = occurred_at  # the latest time it got there
    reached.setdefault(shipment.status, shipment.status_changed_at)
    order = list(TIMELINE)
    current = shipment.status
    position = order.index(current) if current in order else len(order)
    steps = []
    for index, status in enumerate(order):
        at = reached.get(status)
        if index < position or (current in order and index == position):
            state = "current" if status == current else "done"
        else:
            state = "todo"
        steps.append(
            {
                "key": status,
                "label": status_label(status),
                "state": state,
                "at": local_moment(at, zone=zone, now=now) if at and state != "todo" else "",
            }
        )
    if current in FINAL_STEP:
        at = reached.get(current)
        steps.append(
            {
                "key": current,
                "label": status_label(current),
                "state": FINAL_STEP[current],
                "at": local_moment(at, zone=zone, now=now) if at else "",
            }
        )
    else:
        steps.append({"key": S.DELIVERED, "label": _("Delivered"), "state": "todo", "at": ""})
    if rescheduled_to:
        steps.insert(
            len(steps) - 1,
            {
                "key": "rescheduled",
                "label": _("Rescheduled"),
                "state": "done",
                "at": rescheduled_to,
            },
        )
    return steps


def _rescheduled_to(shipment: Shipment, *, zone, now: datetime) -> str | None:
    """ "tomorrow, 9:00 – 13:00" when the recipient moved the delivery (newest move)."""
    action = (
        CustomerAction.objects.filter(shipment_id=shipment.pk, kind=CustomerActionKind.RESCHEDULE)
        .order_by("-occurred_at", "-pk")
        .first()
    )
    if action is None or shipment.status in FINAL_STEP:
        return None
    try:
        start = datetime.fromisoformat(action.details["window_start"])
        end = datetime.fromisoformat(action.details["window_end"])
    except (KeyError, TypeError, ValueError):
        return None
    return _("%(day)s, %(start)s – %(end)s") % {
        "day": local_day(start, zone=zone, now=now),
        "start": local_time(start, zone),
        "end": local_time(end, zone),
    }


def _eta(stop: Stop | None, shipment: Shipment, *, zone, now: datetime) -> dict | None:
    """The window the recipient is told: the ETA engine's P10–P90 while the stop is open on
    an active route, else the promised window of the shipment (or the stop's)."""
    if shipment.status in FINAL_STEP and shipment.status != S.ATTEMPT_FAILED:
        return None
    earliest = latest = None
    source = "promise"
    if stop is not None and stop.status in OPEN_STOP_STATUSES:
        if stop.eta_earliest and stop.eta_latest and stop.route.status in ACTIVE_ROUTE_STATUSES:
            earliest, latest, source = stop.eta_earliest, stop.eta_latest, "eta"
        elif stop.window_start and stop.window_end:
            earliest, latest = stop.window_start, stop.window_end
    if earliest is None and shipment.promised_window_start and shipment.promised_window_end:
        earliest, latest = shipment.promised_window_start, shipment.promised_window_end
    if earliest is None or latest is None or latest < now - timedelta(hours=1):
        return None
    if source == "eta":
        start, end = honest_window(earliest=earliest, latest=latest, now=now, zone=zone)
    else:  # a promise is shown as promised
        start, end = earliest.astimezone(zone), latest.astimezone(zone)
    day = local_day(start, zone=zone, now=now)
    text = _("Between %(start)s and %(end)s") % {
        "start": local_time(start, zone),
        "end": local_time(end, zone),
    }
    return {
        "source": source,
        "start": iso(start),
        "end": iso(end),
        "day": day,
        "text": text,
        "width_min": int((end - start).total_seconds() // 60),
    }


def _pod(shipment: Shipment, *, zone, now: datetime) -> dict | None:
    from tracking.services.proof_of_delivery import pod_file_url

    pod = (
        ProofOfDelivery.objects.filter(shipment_id=shipment.pk, outcome=PodOutcome.DELIVERED)
        .prefetch_related("files")
        .order_by("-captured_at")
        .first()
    )
    if pod is None:
        return None
    photos, signature = [], None
    for pod_file in pod.files.all():
        url, _expires = pod_file_url(pod_file)
        if pod_file.kind == PodFileKind.SIGNATURE:
            signature = url
        else:
            photos.append(url)
    return {
        "at": local_moment(pod.captured_at, zone=zone, now=now),
        "recipient_name": pod.recipient_name,
        "left": _where_left(pod),
        "photos": photos,
        "signature": signature,
    }


def _where_left(pod: ProofOfDelivery) -> str:
    """The safe place the driver chose (in the page's language), then their note."""
    place = _(SafePlace(pod.left_at).label) if pod.left_at else ""
    return " · ".join(part for part in (place, pod.note) if part)


def _failure(stop: Stop | None, shipment: Shipment, *, zone, now) -> dict | None:
    if shipment.status != S.ATTEMPT_FAILED:
        return None
    failed = (
        Stop.objects.filter(stop_shipments__shipment_id=shipment.pk, status=StopStatus.FAILED)
        .order_by("-actual_departure", "-pk")
        .first()
    )
    reason = failed.failure_reason if failed is not None else ""
    if stop is not None and stop.status in OPEN_STOP_STATUSES and stop != failed:
        when = stop.eta or stop.window_start or stop.planned_arrival
        next_text = (
            _("We will try again %(when)s.") % {"when": local_day(when, zone=zone, now=now)}
            if when
            else _("We will try again on the next delivery day.")
        )
    else:
        next_text = _(
            "We will try again on the next delivery day. You can choose another day below."
        )
    return {"reason": failure_label(reason), "next": next_text}


def tracking_state(
    *,
    shipment: Shipment,
    organization,
    language: str,
    now: datetime | None = None,
) -> dict:
    """The whole view model (see the module docstring). `language` is an installed language
    code ("es", "en")."""
    state, _stop = tracking_read(
        shipment=shipment, organization=organization, language=language, now=now
    )
    return state


def tracking_read(
    *,
    shipment: Shipment,
    organization,
    language: str,
    now: datetime | None = None,
) -> tuple[dict, Stop | None]:
    """`tracking_state` and the stop it was read from (the socket listens for that stop's
    route and vehicle; the page never shows their ids)."""
    now = now or timezone.now()
    zone = organization.zone
    with translation.override(language):
        context = stop_context(shipment)
        rescheduled_to = _rescheduled_to(shipment, zone=zone, now=now)
        stop = context.stop
        route = stop.route if stop is not None else None
        route_running = route is not None and route.status == RouteStatus.IN_PROGRESS
        stop_open = stop is not None and stop.status in OPEN_STOP_STATUSES
        live_minutes = getattr(organization, "tracking_live_minutes", 15)
        live = privacy.is_live(
            route_running=route_running,
            stop_open=stop_open,
            stops_before=context.stops_before,
            eta=stop.eta if stop is not None else None,
            now=now,
            live_minutes=live_minutes,
        )
        state: dict = {
            "v": STATE_VERSION,
            "generated_at": iso(now),
            "language": language,
            "reference": shipment.reference,
            "status": shipment.status,
            "status_text": status_label(shipment.status),
            "timeline": _timeline(shipment, zone=zone, now=now, rescheduled_to=rescheduled_to),
            "eta": _eta(stop, shipment, zone=zone, now=now),
            "stops_before": None,
            "stops_before_text": "",
            "driver": None,
            "live": live,
            "vehicle": None,
            "destination": None,
            "distance_text": "",
            "last_seen_text": "",
            "pod": None,
            "failure": _failure(stop, shipment, zone=zone, now=now),
            # The recipient's own say, so the page shows what they did instead of the form.
            "away": bool(stop_open and stop.recipient_away_at is not None),
            "rated": shipment.status == S.DELIVERED
            and DeliveryRating.objects.filter(shipment_id=shipment.pk).exists(),
        }
        if route_running and stop_open and context.stops_before is not None:
            n = context.stops_before
            state["stops_before"] = n
            state["stops_before_text"] = (
                _("You are the driver's next stop")
                if n == 0
                else ngettext("%(n)d stop before yours", "%(n)d stops before yours", n) % {"n": n}
            )
        if route is not None and route.driver is not None and shipment.status not in FINAL_STEP:
            state["driver"] = {"first_name": first_name(route.driver.name)}
        if route_running and stop_open:
            _vehicle(state, stop, now=now, live=live)
        if shipment.status == S.DELIVERED:
            state["pod"] = _pod(shipment, zone=zone, now=now)
    return state, stop


def _vehicle(state: dict, stop: Stop, *, now: datetime, live: bool) -> None:
    fix = vehicle_fix(stop)
    if fix is None:
        return
    age_s = (now - fix["fix_time"]).total_seconds()
    if age_s > settings.TRACKING_STALE_S:
        state["last_seen_text"] = minutes_ago_text(max(1, int(age_s // 60)))
    if live:
        state["vehicle"] = {
            **privacy.exact(fix["lat"], fix["lon"]),
            "fix_time": iso(fix["fix_time"]),
        }
        state["destination"] = privacy.exact(stop.location.y, stop.location.x)
    else:
        km = privacy.coarse_distance_km(fix["lat"], fix["lon"], stop.location.y, stop.location.x)
        state["distance_text"] = (
            _("The driver is less than %(km)d km away") % {"km": km}
            if km <= 1
            else _("The driver is about %(km)d km away") % {"km": km}
        )


# Keys that change on every build without saying anything new (signed links carry a time).
VOLATILE_KEYS = ("generated_at", "pod")


def state_fingerprint(state: dict) -> tuple:
    """What decides whether a socket needs a new `state` message."""
    return tuple(
        (key, repr(value)) for key, value in sorted(state.items()) if key not in VOLATILE_KEYS
    ) + (("pod_present", state.get("pod") is not None),)
