"""pod_far: a proof of delivery captured away from the delivery address.

Fires on `pod.captured` when the POD is outside the geofence or farther than `pod_far_m`.
Never auto-clears: a person acknowledges and resolves it (it is evidence, not a state).
"""

from __future__ import annotations

from datetime import datetime

from exceptions.models import AlertKind, Severity
from exceptions.services import alert_raise
from exceptions.thresholds import thresholds_for
from tracking.models import Shipment

KIND = AlertKind.POD_FAR


def is_far(distance_m: float | None, outside_geofence: bool, limit_m: float) -> bool:
    return bool(outside_geofence) or (distance_m is not None and distance_m > limit_m)


def on_pod_captured(event) -> None:
    payload = event.payload
    shipment = Shipment.objects.filter(pk=payload.get("shipment")).first()
    if shipment is None:
        return
    limit = thresholds_for(shipment.organization_id, shipment.carrier_id).pod_far_m
    if not is_far(payload.get("distance_m"), payload.get("outside_geofence"), limit):
        return
    captured = payload.get("captured_at")
    alert_raise(
        organization_id=shipment.organization_id,
        kind=KIND,
        subject_type="shipment",
        subject_id=str(shipment.pk),
        severity=Severity.MEDIUM,
        started_at=datetime.fromisoformat(captured) if captured else event.occurred_at,
        title=f"{shipment.reference}: proof of delivery {payload.get('distance_m')} m away",
        detail={
            "pod": payload.get("id"),
            "distance_m": payload.get("distance_m"),
            "outside_geofence": bool(payload.get("outside_geofence")),
            "limit_m": limit,
        },
        shipment=shipment,
        carrier_id=shipment.carrier_id,
    )
