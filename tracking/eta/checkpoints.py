"""The moments before an arrival at which the ETA on show is judged: one per horizon bucket of
the engine, at its middle (7.5, 22.5, 45 and 90 minutes; 180 for the open-ended "120+"). The
ETA accuracy report (carriers/sla/eta_accuracy.py) and the conformal windows
(tracking/eta/conformal_store.py) sample the same moments."""

from __future__ import annotations

from tracking.eta.engine import HORIZON_BUCKETS, horizon_bucket

OPEN_BUCKET_FACTOR = 1.5  # the checkpoint of the open-ended bucket: 1.5 × its lower edge


def checkpoints() -> list[tuple[str, float]]:
    """(bucket name, minutes before the arrival) for each horizon bucket of the engine."""
    points = []
    for low, high in HORIZON_BUCKETS:
        minutes = (low + high) / 2 if high is not None else low * OPEN_BUCKET_FACTOR
        points.append((horizon_bucket(minutes), minutes))
    return points
