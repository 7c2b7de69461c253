"""What has been learned, as the live ETAs read it: the newest stored model's factors and the
newest calibration of an organization, remembered per process for a minute.

The lowest module of the ETA package: the engine reads from here, training (learning.py) and
calibration (calibration.py) write the rows and call `forget_learned`, so none of them needs
the others in a circle.
"""

from __future__ import annotations

from typing import NamedTuple
from zoneinfo import ZoneInfo

from control_tower.caches import LocalCache
from control_tower.models import Organization
from tracking.eta.factors import LearnedTimes
from tracking.models import EtaCalibration, EtaModel

# The recompute runs on every ping; what it learned changes nightly. Per process, for a minute
# (train/calibrate in the same process forget it at once).
LEARNED_CACHE_S = 60.0
_learned = LocalCache(maxsize=10_000, ttl_s=LEARNED_CACHE_S)


def next_version(model, organization) -> int:
    """The next version number of an organization's learned rows (EtaModel, EtaCalibration)."""
    latest = (
        model.objects.filter(organization=organization)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    return (latest or 0) + 1


def current_model(organization) -> EtaModel | None:
    """The organization's model on the most recent history (evaluations train models on older
    days; those never take over)."""
    return (
        EtaModel.objects.filter(organization=organization)
        .order_by("-trained_until", "-version")
        .defer("blob")
        .first()
    )


def current_travel_by_hour(organization) -> dict[str, float] | None:
    """The learned factors by local hour the live ETAs use; None before any training."""
    model = current_model(organization)
    return (model.travel_by_hour or None) if model is not None else None


def current_dwell_factor(organization) -> float | None:
    """The learned actual / planned dwell the live ETAs use; None before any training."""
    model = current_model(organization)
    return model.dwell_factor if model is not None else None


def as_offsets(buckets: dict) -> dict[str, tuple[float, float]]:
    """The engine's form: {bucket: (p10 seconds, p90 seconds)}."""
    return {b: (v["p10_min"] * 60, v["p90_min"] * 60) for b, v in buckets.items()}


def current_calibration(organization) -> dict[str, tuple[float, float]] | None:
    """The newest calibration's offsets, for the live windows; None before any."""
    calibration = (
        EtaCalibration.objects.filter(organization=organization)
        .order_by("-computed_until", "-version")
        .first()
    )
    return as_offsets(calibration.buckets) if calibration is not None else None


def current_times(organization) -> LearnedTimes | None:
    """The learned travel and dwell tables the live ETAs use; None before any training."""
    model = current_model(organization)
    return LearnedTimes.of(model.version, model.factors) if model is not None else None


class Learned(NamedTuple):
    travel_by_hour: dict | None
    dwell_factor: float | None
    calibration: dict | None
    zone: ZoneInfo
    times: LearnedTimes | None


def learned_state(organization_id: int) -> Learned:
    """What the live ETAs of this organization use; None for what has not been learned yet
    (the priors stay)."""
    cached = _learned.get(organization_id)
    if cached is not None:
        return cached
    organization = Organization.objects.get(pk=organization_id)
    state = Learned(
        current_travel_by_hour(organization),
        current_dwell_factor(organization),
        current_calibration(organization),
        ZoneInfo(organization.time_zone),
        current_times(organization),
    )
    _learned.set(organization_id, state)
    return state


def forget_learned(organization_id: int) -> None:
    _learned.pop(organization_id)
