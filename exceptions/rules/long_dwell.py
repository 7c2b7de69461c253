"""long_dwell: a vehicle has stood at a stop (arrived, not departed) for longer than the P90 of
its predicted dwell times `long_dwell_factor`.

The predicted dwell is the ETA engine's (tracking/eta/engine.dwell_s: the planned service time
times the organization's learned actual/planned dwell); its P90 uses the engine's dwell spread
(log-normal, PRIOR_DWELL_SIGMA). Clears when the stop is no longer `arrived` (completed,
failed) or its route stops running.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db.models import Q

from exceptions.models import AlertKind, Severity
from exceptions.rules.common import open_subjects
from exceptions.services import alert_clear, alert_raise
from exceptions.thresholds import thresholds_for
from tracking.eta.engine import PRIOR_DWELL_SIGMA, Z90, dwell_s
from tracking.eta.learned import current_dwell_factor
from tracking.models import RouteStatus, Stop, StopStatus

KIND = AlertKind.LONG_DWELL
P90_OVER_MEDIAN = math.exp(Z90 * PRIOR_DWELL_SIGMA)


def dwell_limit(stop: Stop, learned_factor: float | None, threshold_factor: float) -> timedelta:
    return timedelta(
        seconds=dwell_s(stop, learned_factor) * P90_OVER_MEDIAN * float(threshold_factor)
    )


def is_long(stop: Stop, now: datetime, limit: timedelta) -> bool:
    return (
        stop.status == StopStatus.ARRIVED
        and stop.route.status == RouteStatus.IN_PROGRESS
        and stop.actual_arrival is not None
        and stop.actual_departure is None
        and now - stop.actual_arrival > limit
    )


def sweep(organization, now: datetime) -> tuple[int, int]:
    open_alerts = open_subjects(KIND)
    stops = Stop.objects.select_related("route").filter(
        Q(status=StopStatus.ARRIVED, route__status=RouteStatus.IN_PROGRESS)
        | Q(pk__in=[int(s) for s in open_alerts])
    )
    learned = current_dwell_factor(organization)
    raised = cleared = 0
    for stop in stops:
        subject = str(stop.pk)
        factor = thresholds_for(organization.pk, stop.route.carrier_id).long_dwell_factor
        limit = dwell_limit(stop, learned, factor)
        long = is_long(stop, now, limit)
        if long and subject not in open_alerts:
            minutes = int((now - stop.actual_arrival).total_seconds() // 60)
            alert_raise(
                organization_id=organization.pk,
                kind=KIND,
                subject_type="stop",
                subject_id=subject,
                severity=Severity.MEDIUM,
                started_at=stop.actual_arrival,
                title=f"{stop.route.code} #{stop.sequence}: at the stop for {minutes} min",
                detail={
                    "arrived_at": stop.actual_arrival.isoformat(),
                    "limit_s": round(limit.total_seconds()),
                },
                route=stop.route,
                stop=stop,
                carrier_id=stop.route.carrier_id,
            )
            raised += 1
        elif (
            not long
            and subject in open_alerts
            and (stop.status != StopStatus.ARRIVED or stop.route.status != RouteStatus.IN_PROGRESS)
        ):
            alert_clear(
                organization_id=organization.pk,
                kind=KIND,
                subject_type="stop",
                subject_id=subject,
                reason=f"stop {stop.status}",
            )
            cleared += 1
    return raised, cleared
