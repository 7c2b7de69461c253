"""predicted_late: a stop's predicted arrival is past its promised window.

Fires on `stop.eta_changed`: the pessimistic ETA (P90, `eta_latest`) past the window end is
"at risk" (medium); the median ETA (P50, `eta`) past it is "late" (high). Clears when the ETA
is back inside the window by HYSTERESIS, or when the stop is done (`stop.status_changed`).

Three things keep it from crying wolf, each measured on simulated days
(docs/EXCEPTIONS_EVALUATION.md):
- **a margin that grows with the horizon**: "past the window" means past it by more than
  LATE_MARGIN + HORIZON_SHARE × (time still to go). An ETA three hours out is off by tens of
  minutes either way (the engine's own P10–P90 width grows the same way), so 10 min past a
  window three hours away says little, while 10 min past one 20 min away is nearly certain;
- **debounce**: the condition must hold on CONFIRMATIONS consecutive ETA computations (the
  stored one and the revisions before it, tracking_etarevision). The engine's ETAs swing 15–30
  min later for one to three recomputes while a vehicle stands (at a door, in traffic) and
  come back when it moves on: those must not raise;
- **hysteresis**: it clears only when the P50 is HYSTERESIS inside the window and the
  condition no longer holds, so an ETA hovering at the boundary does not open and close an
  alert every five minutes.
And no alert from stale data: `stale()` (an ETA that rests on no recent fix, or that the
vehicle's fixes have overtaken) may clear an alert but never raises one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, Q

from exceptions.models import AlertKind, Severity
from exceptions.rules.common import open_subjects
from exceptions.services import alert_clear, alert_raise
from exceptions.thresholds import thresholds_for
from tracking.models import DevicePosition, EtaRevision, Stop
from tracking.models.plan import OPEN_STOP_STATUSES, StopStatus

KIND = AlertKind.PREDICTED_LATE
LATE_MARGIN = timedelta(minutes=5)
HORIZON_SHARE = 0.2  # of the time between the computation and the predicted arrival
CONFIRMATIONS = 3  # ten minutes of agreeing predictions at the engine's 5-min refresh
HYSTERESIS = timedelta(minutes=5)
# An ETA the vehicle's fixes have overtaken by this much was not recomputed since: it no
# longer says where the vehicle is, and may clear an alert but never raise one.
STALE_AFTER = timedelta(minutes=15)


def margin(eta: datetime, computed_at: datetime) -> timedelta:
    """How far past the window end a prediction made at `computed_at` must be to count."""
    ahead = max(eta - computed_at, timedelta(0))
    return LATE_MARGIN + ahead * HORIZON_SHARE


def judge(
    end: datetime, eta: datetime, latest: datetime, computed_at: datetime, *, use_p50: bool
) -> str:
    """One ETA computation against the window end: "late", "at_risk", "inside" (P50 at least
    HYSTERESIS inside and the P90 not past the margin) or "between" (neither: keep whatever
    is open)."""
    past = end + margin(eta, computed_at)
    if use_p50 and eta > past:
        return "late"
    if latest > past:
        return "at_risk"
    if eta <= end - HYSTERESIS:
        return "inside"
    return "between"


def lateness(stop: Stop, *, use_p50: bool = True) -> str | None:
    """The condition, named once: "late", "at_risk" (each only when it held on the last
    CONFIRMATIONS computations), "inside" (clear) or None (keep whatever is open). None as
    well when the stop has no window or no ETA."""
    end = stop.window_end
    if end is None or stop.eta is None or stop.eta_updated_at is None:
        return None
    now = judge(end, stop.eta, stop.eta_latest or stop.eta, stop.eta_updated_at, use_p50=use_p50)
    if now == "inside":
        return "inside"
    if now == "between":
        return None
    states = [now]
    if CONFIRMATIONS > 1:
        earlier = (
            EtaRevision.objects.filter(stop_id=stop.pk, computed_at__lt=stop.eta_updated_at)
            .order_by("-computed_at")
            .values_list("eta", "latest", "computed_at")[: CONFIRMATIONS - 1]
        )
        states += [judge(end, eta, latest, at, use_p50=use_p50) for eta, latest, at in earlier]
    if len(states) < CONFIRMATIONS or any(s not in ("late", "at_risk") for s in states):
        return None  # not confirmed yet
    return "late" if all(s == "late" for s in states) else "at_risk"


def evaluate(stop: Stop) -> None:
    route = stop.route
    if stop.status not in OPEN_STOP_STATUSES:
        _clear(stop, f"stop {stop.status}")
        return
    thresholds = thresholds_for(stop.organization_id, route.carrier_id)
    state = lateness(stop, use_p50=thresholds.predicted_late_p50)
    if state == "inside":
        _clear(stop, "back inside the window")
    elif (
        state in ("late", "at_risk")
        # At the door there is no arrival left to predict: an open alert waits for the stop to
        # be done, a new one would only announce what the dispatcher already sees.
        and stop.status != StopStatus.ARRIVED
        and not stale(stop, last_heard(route))
    ):
        late = state == "late"
        alert_raise(
            organization_id=stop.organization_id,
            kind=KIND,
            subject_type="stop",
            subject_id=str(stop.pk),
            severity=Severity.HIGH if late else Severity.MEDIUM,
            # The condition began with the prediction that first crossed the window.
            started_at=stop.eta_updated_at,
            title=f"{route.code} #{stop.sequence} {'late' if late else 'at risk'}",
            detail={
                "state": state,
                "window_end": stop.window_end.isoformat(),
                "eta": stop.eta.isoformat(),
                "eta_latest": (stop.eta_latest or stop.eta).isoformat(),
                "computed_at": stop.eta_updated_at.isoformat(),
            },
            route=route,
            stop=stop,
            vehicle=route.vehicle,
            carrier_id=route.carrier_id,
        )


def _clear(stop: Stop, reason: str) -> None:
    """Clear only what is open: most events find a stop on time with no alert, and one plain
    read is cheaper than the locking read (and its savepoint) of `alert_clear`."""
    if str(stop.pk) not in open_subjects(KIND, [stop.pk]):
        return
    alert_clear(
        organization_id=stop.organization_id,
        kind=KIND,
        subject_type="stop",
        subject_id=str(stop.pk),
        reason=reason,
    )


def last_heard(route) -> datetime | None:
    """The newest moment the route's own data speaks for: the newest good fix of its crew's
    devices (the driver's or the vehicle's, as the ETA engine reads them), else its newest
    stop arrival or departure, else its start. None: nothing was ever heard."""
    whose = Q(pk__in=[])
    if route.driver_id:
        whose |= Q(device__driver_id=route.driver_id)
    if route.vehicle_id:
        whose |= Q(device__vehicle_id=route.vehicle_id)
    fix = DevicePosition.objects.filter(whose, device__revoked_at__isnull=True).aggregate(
        newest=Max("fix_time")
    )["newest"]
    if fix is not None:
        return fix
    done = route.stops.aggregate(a=Max("actual_arrival"), d=Max("actual_departure"))
    moments = [m for m in (done["a"], done["d"], route.started_at) if m is not None]
    return max(moments, default=None)


def stale(stop: Stop, heard: datetime | None) -> bool:
    """Whether the stored ETA rests on stale data, judged against the route's newest fix
    (`heard`), never against the wall clock.

    The wall clock is the wrong yardstick: the relay may deliver the event minutes after the
    ETA was computed (a backlog, a worker restart), and a replay of a past day runs hours or
    days later; either way `now - eta_updated_at` says how late the delivery is, not how good
    the prediction was (it silenced every alert of a replayed day). The event's envelope time
    is no better: it is when the outbox row was written, not what the prediction knew. What
    makes an ETA untrustworthy is the gap between the prediction and the route's own data,
    both in the route's time:
    - the vehicle reported more than STALE_AFTER after the ETA was computed: the ETA ignores
      where the vehicle went since (it was not recomputed);
    - the ETA was computed more than ETA_POSITION_MAX_AGE_S after the newest fix: the engine
      had no position (it ignores older fixes and falls back to the last finished stop), so it
      extrapolates from where the vehicle was, not where it is.
    A buffered fix arriving late moves `heard` only as far as its own fix time."""
    if stop.eta_updated_at is None or heard is None:
        return True
    blind = timedelta(seconds=settings.ETA_POSITION_MAX_AGE_S)
    return heard - stop.eta_updated_at > STALE_AFTER or stop.eta_updated_at - heard > blind


def _stop(event) -> Stop | None:
    return Stop.objects.select_related("route").filter(pk=event.payload.get("id")).first()


def on_stop_event(event) -> None:
    """`stop.eta_changed` and `stop.status_changed`: decide from the stop as it is now."""
    stop = _stop(event)
    if stop is not None:
        evaluate(stop)
