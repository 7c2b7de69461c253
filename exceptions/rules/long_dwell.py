"""long_dwell: a vehicle has stood at a stop (arrived, not departed) for much longer than
ordinary visits of that kind of stop take.

The limit is learned, per stop kind, from the organization's own history: the P90 of
actual / planned dwell over the deliveries (completed visits) of the last HISTORY days before
`now` (one aggregate statement, remembered per process for the hour), times the stop's planned
service time. About one ordinary visit in ten outlasts its own P90 by definition, so the alert
waits for `long_dwell_factor` x that P90 and at least `long_dwell_margin_min` minutes more
(defaults 1.5 and 5): a slow but ordinary visit (a big apartment block, three parcels) stays
quiet, a visit that turned into something else (a locked building, a long argument) does not.

Before MIN_VISITS deliveries of a kind are known, the pooled visits of every kind are used, and
before that the ETA engine's prior: its predicted dwell (planned service x the learned mean
actual/planned factor) x its log-normal P90 spread (e^(1.2816 x 0.35) ~ 1.57).

Raised once, when the limit is passed; clears when the stop is no longer `arrived`
(completed, failed) or its route stops running. The limit may move while the vehicle stands
there (a new hour of history): the alert does not close for that, only when the stop is done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q

from control_tower.caches import LocalCache
from exceptions.models import AlertKind, Severity
from exceptions.rules.common import open_subjects, refresh_seen
from exceptions.services import alert_clear, alert_raise
from exceptions.thresholds import thresholds_for
from tracking.eta.engine import PRIOR_DWELL_SIGMA, Z90, dwell_s
from tracking.eta.learned import current_dwell_factor
from tracking.models import RouteStatus, Stop, StopStatus

KIND = AlertKind.LONG_DWELL
P90_OVER_MEDIAN = math.exp(Z90 * PRIOR_DWELL_SIGMA)
HISTORY = timedelta(days=28)
MIN_VISITS = 30  # fewer deliveries of a kind: that kind's P90 is noise (as the ETA learning)
POOLED = ""  # the key of every kind together
CACHE_S = 3600.0

# Per stop kind and for all kinds together (GROUPING SETS: one pass): how many deliveries and
# the P90 of actual / planned dwell. Completed visits only: a failed attempt is a minute at a
# closed door, not the tail of a visit.
_LEARNED_SQL = """
SELECT COALESCE(s.kind, ''), count(*),
       percentile_cont(0.9) WITHIN GROUP (
           ORDER BY EXTRACT(EPOCH FROM s.actual_departure - s.actual_arrival)
                    / GREATEST(COALESCE(s.planned_service_s, 180), 1))
FROM tracking_stop s
WHERE s.organization_id = %(org)s AND s.status = %(completed)s
  AND s.actual_arrival >= %(since)s AND s.actual_arrival < %(now)s
  AND s.actual_departure IS NOT NULL AND s.actual_departure >= s.actual_arrival
GROUP BY GROUPING SETS ((s.kind), ())
"""


@dataclass(frozen=True)
class LearnedDwell:
    """P90 of actual / planned dwell by stop kind (POOLED: all kinds), with enough visits, and
    the ETA engine's learned mean factor for the prior."""

    p90_ratio: dict[str, float]
    mean_factor: float | None

    def p90_s(self, stop: Stop) -> tuple[float, str]:
        """The P90 dwell of this stop (seconds) and where it comes from."""
        planned = float(stop.planned_service_s or 180)
        for key, source in ((stop.kind, "kind"), (POOLED, "all kinds")):
            if key in self.p90_ratio:
                return planned * self.p90_ratio[key], source
        return dwell_s(stop, self.mean_factor) * P90_OVER_MEDIAN, "prior"


_learned = LocalCache(maxsize=5_000, ttl_s=CACHE_S)


def learned_dwell(organization, now: datetime) -> LearnedDwell:
    """What the organization's history says about its visits up to `now`, recomputed each hour
    (the key is the hour of `now`: a replay of a past day learns as its simulated time moves)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    return _learned.get_or_set((organization.pk, hour), lambda: _learn(organization, hour))


def _learn(organization, until: datetime) -> LearnedDwell:
    with connection.cursor() as cursor:
        cursor.execute(
            _LEARNED_SQL,
            {
                "org": organization.pk,
                "completed": StopStatus.COMPLETED,
                "since": until - HISTORY,
                "now": until,
            },
        )
        rows = cursor.fetchall()
    # GROUPING SETS gives the pooled row a NULL kind; COALESCE made it POOLED. A stop kind is
    # never empty (a choice), so the two cannot mix.
    ratios = {kind: float(p90) for kind, visits, p90 in rows if visits >= MIN_VISITS and p90}
    return LearnedDwell(ratios, current_dwell_factor(organization))


def forget_learned_dwell(organization_id: int) -> None:
    _learned.discard_where(lambda key, _value: key[0] == organization_id)


def dwell_limit(stop: Stop, learned: LearnedDwell, factor: float, margin_min: float) -> timedelta:
    """How long a visit to this stop may last before it is a long dwell."""
    p90, _source = learned.p90_s(stop)
    return timedelta(seconds=max(p90 * float(factor), p90 + 60 * float(margin_min)))


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
    learned = None
    raised = cleared = 0
    holding = []
    for stop in stops:
        subject = str(stop.pk)
        done = stop.status != StopStatus.ARRIVED or stop.route.status != RouteStatus.IN_PROGRESS
        if done:
            if subject in open_alerts:
                alert_clear(
                    organization_id=organization.pk,
                    kind=KIND,
                    subject_type="stop",
                    subject_id=subject,
                    reason=f"stop {stop.status}",
                )
                cleared += 1
            continue
        if learned is None:  # only when a vehicle stands somewhere
            learned = learned_dwell(organization, now)
        thresholds = thresholds_for(organization.pk, stop.route.carrier_id)
        limit = dwell_limit(
            stop, learned, thresholds.long_dwell_factor, thresholds.long_dwell_margin_min
        )
        if not is_long(stop, now, limit):
            continue
        if subject in open_alerts:
            holding.append(subject)
            continue
        minutes = int((now - stop.actual_arrival).total_seconds() // 60)
        p90, source = learned.p90_s(stop)
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
                "p90_s": round(p90),
                "p90_from": source,
            },
            route=stop.route,
            stop=stop,
            carrier_id=stop.route.carrier_id,
        )
        raised += 1
    refresh_seen(KIND, open_alerts, holding)
    return raised, cleared
