"""Feeding the adaptive conformal windows (tracking/eta/conformal.py) from what customers were
really shown, and storing them where the live ETAs read their windows (`EtaCalibration`).

The stream: every ETA revision that was on show at one of the accuracy checkpoints before its
stop's arrival (the same moments the ETA accuracy report judges: the middles of the horizon
buckets), each once, in arrival order; its residual is actual arrival − ETA, its bucket the
predicted horizon it was computed for (eta − computed_at), which is how the engine looks its
window up. The last `days` are replayed from the target miss level each run (deterministic, no
state to keep between runs), and the result is stored as a new calibration version: the
conformal buckets override the newest nightly calibration's (tracking/eta/calibration.py),
buckets with too few arrivals keep the nightly's.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.db import connection
from django.utils import timezone

from tracking.eta import conformal
from tracking.eta.calibration import store_calibration
from tracking.eta.checkpoints import checkpoints
from tracking.eta.engine import window_bucket
from tracking.models import EtaCalibration

DEFAULT_DAYS = 3
CONFORMAL_FORMAT = 1  # part of the fingerprint


# Each revision once (DISTINCT ON), in arrival order; only the organization's rows.
SHOWN = """
SELECT residual_s, predicted_min FROM (
    SELECT DISTINCT ON (r.id) s.actual_arrival, r.id,
           extract(epoch FROM s.actual_arrival - r.eta) AS residual_s,
           extract(epoch FROM r.eta - r.computed_at) / 60 AS predicted_min
    FROM tracking_stop s
    CROSS JOIN unnest(%(minutes)s::float8[]) AS c(minutes)
    CROSS JOIN LATERAL (
        SELECT id, eta, computed_at FROM tracking_etarevision r
        WHERE r.organization_id = s.organization_id AND r.stop_id = s.id
          AND r.computed_at <= s.actual_arrival - make_interval(secs => c.minutes * 60)
        ORDER BY r.computed_at DESC LIMIT 1
    ) r
    WHERE s.organization_id = %(organization)s
      AND s.actual_arrival >= %(since)s AND s.actual_arrival < %(until)s
    ORDER BY r.id
) shown
ORDER BY actual_arrival, id
"""


def shown_residuals(organization, *, since: datetime, until: datetime) -> list[tuple[str, float]]:
    """(predicted-horizon bucket, actual − shown ETA in seconds), in arrival order."""
    with connection.cursor() as cursor:
        cursor.execute(
            SHOWN,
            {
                "organization": organization.pk,
                "minutes": [minutes for _bucket, minutes in checkpoints()],
                "since": since,
                "until": until,
            },
        )
        rows = cursor.fetchall()
    return [(window_bucket(max(float(p), 0.0)), float(r)) for r, p in rows]


def _nightly_buckets(organization) -> dict:
    """The newest calibration that is not a conformal one (its buckets carry no alpha)."""
    for calibration in EtaCalibration.objects.filter(organization=organization).order_by(
        "-version"
    )[:50]:
        if not any("alpha" in value for value in calibration.buckets.values()):
            return calibration.buckets
    return {}


def conformal_calibrate(
    organization, *, now: datetime | None = None, days: int = DEFAULT_DAYS
) -> EtaCalibration | None:
    """Replay the last `days` of shown ETAs through ACI and store the windows (needs the
    organization in scope). None when no bucket has enough arrivals yet. Idempotent: the same
    history gives back the version already stored."""
    now = now or timezone.now()
    zone = organization.zone
    today = timezone.localtime(now, zone).date()
    since = datetime.combine(today - timedelta(days=days), time.min, tzinfo=zone)
    samples = shown_residuals(organization, since=since, until=now)
    adaptive = conformal.calibration_buckets(conformal.replay(samples))
    if not adaptive:
        return None
    buckets = {**_nightly_buckets(organization), **adaptive}
    return store_calibration(
        organization,
        buckets=buckets,
        fingerprinted=[CONFORMAL_FORMAT, buckets],
        created_at=now,
        computed_from=since.date(),
        # Today's arrivals are in: it outranks the nightly calibration of today.
        computed_until=today + timedelta(days=1),
        samples=len(samples),
    )
