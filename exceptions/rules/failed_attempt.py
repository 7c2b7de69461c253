"""failed_attempt: a delivery attempt failed (one alert per shipment at the failed stop).

Fires on `stop.status_changed` to failed, with the reason code in the detail. Clears when the
shipment is attempted again or rescheduled: its stop changes status again (re-attempt), or the
shipment is linked to another open stop (`route.changed` for planned / linked / moved stops).
"""

from __future__ import annotations

from exceptions.models import AlertKind, Severity
from exceptions.rules.common import open_subjects
from exceptions.services import alert_clear, alert_raise
from tracking.models import Stop, StopShipment
from tracking.models.plan import OPEN_STOP_STATUSES, StopStatus

KIND = AlertKind.FAILED_ATTEMPT
RESCHEDULE_REASONS = {"planned", "shipments", "reassigned"}


def on_stop_status(event) -> None:
    stop = Stop.objects.select_related("route").filter(pk=event.payload.get("id")).first()
    if stop is None:
        return
    links = list(StopShipment.objects.filter(stop=stop).select_related("shipment"))
    if stop.status != StopStatus.FAILED:
        # Another stop of a shipment that failed before moved: the re-attempt is under way.
        # Only shipments with an open alert from another stop (one read, not one per parcel).
        open_alerts = open_subjects(KIND, [link.shipment_id for link in links])
        for link in links:
            alert = open_alerts.get(str(link.shipment_id))
            if alert is not None and alert.stop_id != stop.pk:
                _clear(link.shipment_id, stop, reason=f"stop {stop.status}")
        return
    for link in links:
        shipment = link.shipment
        alert_raise(
            organization_id=stop.organization_id,
            kind=KIND,
            subject_type="shipment",
            subject_id=str(shipment.pk),
            severity=Severity.MEDIUM,
            started_at=stop.actual_departure or stop.actual_arrival or stop.updated_at,
            title=f"{shipment.reference}: failed attempt ({stop.failure_reason or 'other'})",
            detail={"reason": stop.failure_reason, "stop": stop.pk, "route": stop.route_id},
            route=stop.route,
            stop=stop,
            shipment=shipment,
            carrier_id=stop.route.carrier_id,
        )


def _clear(shipment_id: int, stop: Stop, *, reason: str) -> None:
    alert_clear(
        organization_id=stop.organization_id,
        kind=KIND,
        subject_type="shipment",
        subject_id=str(shipment_id),
        reason=reason,
    )


def on_route_changed(event) -> None:
    """A shipment linked to a new open stop is rescheduled: its failed attempt is handled."""
    if not RESCHEDULE_REASONS & set(event.payload.get("reasons", [])):
        return
    links = list(
        StopShipment.objects.filter(
            stop__route_id=event.payload.get("id"), stop__status__in=OPEN_STOP_STATUSES
        ).select_related("stop")
    )
    open_alerts = open_subjects(KIND, [link.shipment_id for link in links])
    for link in links:
        alert = open_alerts.get(str(link.shipment_id))
        if alert is not None and alert.stop_id != link.stop_id:
            _clear(link.shipment_id, link.stop, reason="rescheduled")
