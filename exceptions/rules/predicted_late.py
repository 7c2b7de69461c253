"""predicted_late: a stop's predicted arrival is past its promised window.

Fires on `stop.eta_changed`: the pessimistic ETA (P90, `eta_latest`) past the window end is
"at risk" (medium); the median ETA (P50, `eta`) past it is "late" (high). Clears when the P90
is back inside the window by HYSTERESIS (an ETA hovering at the boundary must not open and
close an alert every recompute), or when the stop is done (`stop.status_changed`).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from exceptions.models import AlertKind, Severity
from exceptions.services import alert_clear, alert_raise
from exceptions.thresholds import thresholds_for
from tracking.models import Stop
from tracking.models.plan import OPEN_STOP_STATUSES

KIND = AlertKind.PREDICTED_LATE
HYSTERESIS = timedelta(minutes=2)
# An ETA not recomputed for this long (the engine refreshes running routes every few minutes)
# no longer says where the vehicle is: it may clear an alert but never raise one.
STALE_AFTER = timedelta(minutes=15)


def lateness(stop: Stop, *, use_p50: bool = True) -> str | None:
    """The condition, named once: "late", "at_risk", "inside" (clear) or None (in between:
    keep whatever is open). None as well when the stop has no window or no ETA."""
    end = stop.window_end
    if end is None or stop.eta is None:
        return None
    p90 = stop.eta_latest or stop.eta
    if use_p50 and stop.eta > end:
        return "late"
    if p90 > end:
        return "at_risk"
    if p90 <= end - HYSTERESIS:
        return "inside"
    return None


def evaluate(stop: Stop) -> None:
    route = stop.route
    if stop.status not in OPEN_STOP_STATUSES:
        alert_clear(
            organization_id=stop.organization_id,
            kind=KIND,
            subject_type="stop",
            subject_id=str(stop.pk),
            reason=f"stop {stop.status}",
        )
        return
    thresholds = thresholds_for(stop.organization_id, route.carrier_id)
    state = lateness(stop, use_p50=thresholds.predicted_late_p50)
    if state == "inside":
        alert_clear(
            organization_id=stop.organization_id,
            kind=KIND,
            subject_type="stop",
            subject_id=str(stop.pk),
            reason="back inside the window",
        )
    elif state in ("late", "at_risk") and not _stale(stop):
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
            },
            route=route,
            stop=stop,
            vehicle=route.vehicle,
            carrier_id=route.carrier_id,
        )


def _stale(stop: Stop) -> bool:
    return stop.eta_updated_at is None or timezone.now() - stop.eta_updated_at > STALE_AFTER


def _stop(event) -> Stop | None:
    return Stop.objects.select_related("route").filter(pk=event.payload.get("id")).first()


def on_stop_event(event) -> None:
    """`stop.eta_changed` and `stop.status_changed`: decide from the stop as it is now."""
    stop = _stop(event)
    if stop is not None:
        evaluate(stop)
