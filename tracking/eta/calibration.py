"""Calibrated ETA windows: the P10 and P90 of how far actual arrivals land from the ETAs the live
estimator shows, by bucket of predicted horizon, learned per organization from recent history.

The history is replayed: every `step_s` of each completed route, the ETAs the live estimator
(tracking/eta/engine.py: the hourly travel factors, the planned dwell, the dwell still to come
at the stop the vehicle stands at) would have shown for the stops not reached yet, against their
actual arrivals. Only stored stop times are needed (no pings, no simulator): the vehicle's
progress along a leg at a moment is read, in hindsight, from when that leg started and ended.
The prior's log-normal spread stays for buckets with too few samples (and for a new tenant).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from tracking.eta.engine import (
    dwell_s,
    estimate,
    learned_etas,
    remaining_dwell_s,
    window_bucket,
)
from tracking.eta.factors import LearnedTimes
from tracking.eta.learned import (
    current_dwell_factor,
    current_times,
    current_travel_by_hour,
    forget_learned,
    next_version,
)
from tracking.eta.learning import completed_routes, train
from tracking.models import EtaCalibration
from tracking.roads.routing import travel_matrix

DEFAULT_DAYS = 14  # two weeks calibrated better than one in the evaluation
STEP_S = 300
MIN_SAMPLES_PER_BUCKET = 50
CALIBRATION_FORMAT = 1  # part of the fingerprint


def replay_errors(
    organization,
    *,
    since: date,
    until: date,
    travel_by_hour: dict | None,
    dwell_factor: float | None = None,
    step_s: int = STEP_S,
    times: LearnedTimes | None = None,
) -> list[tuple[str, float]]:
    """(predicted-horizon bucket, actual arrival − ETA in seconds) for every stop not reached
    yet at every `step_s` of the completed routes with since <= date < until, as the live
    estimator would have shown them (with the learned tables `times` when given)."""
    zone = ZoneInfo(organization.time_zone)
    errors: list[tuple[str, float]] = []
    for route, visits in completed_routes(since, until):
        free = travel_matrix([route.hub.location, *(s.location for s in visits)]).durations_s
        legs_free = [free[i][i + 1] for i in range(len(visits))]  # leg i ends at visit i
        dwells = [dwell_s(s, dwell_factor) for s in visits]
        moment = route.started_at
        while moment < visits[-1].actual_arrival:
            ahead = next(i for i, s in enumerate(visits) if s.actual_arrival > moment)
            previous = visits[ahead - 1] if ahead else None
            if previous is not None and previous.actual_departure > moment:
                # Standing at the previous stop: the next leg is whole, after the dwell left.
                elapsed = (moment - previous.actual_arrival).total_seconds()
                departs = moment + timedelta(seconds=remaining_dwell_s(dwells[ahead - 1], elapsed))
                first = legs_free[ahead]
            else:
                started = previous.actual_departure if previous else route.started_at
                span = (visits[ahead].actual_arrival - started).total_seconds()
                done = (moment - started).total_seconds() / span if span > 0 else 0.0
                departs, first = moment, legs_free[ahead] * (1 - min(max(done, 0.0), 1.0))
            if times is not None:
                windows = _replayed_with_tables(
                    times, route, visits, ahead, moment, [first, *legs_free[ahead + 1 :]], zone
                )
            else:
                windows = estimate(
                    [first, *legs_free[ahead + 1 :]],
                    dwells[ahead:],
                    departs,
                    travel_by_hour=travel_by_hour,
                    zone=zone,
                )
            for visit, (eta, _low, _high) in zip(visits[ahead:], windows, strict=True):
                errors.append(
                    (
                        window_bucket((eta - moment).total_seconds() / 60),
                        (visit.actual_arrival - eta).total_seconds(),
                    )
                )
            moment += timedelta(seconds=step_s)
    return errors


def _replayed_with_tables(times, route, visits, ahead, moment, legs, zone):
    """The learned tables' ETAs at `moment` for the visits from `ahead` on: standing at the
    previous stop, its learned dwell still to come first; on the road, from the previous stop
    (or the hub) over what is left of the leg."""
    previous = visits[ahead - 1] if ahead else None
    standing = previous is not None and previous.actual_departure > moment
    origin = previous.location if previous is not None else route.hub.location
    chosen = visits[ahead - 1 :] if standing else visits[ahead:]
    return learned_etas(
        times,
        points=[origin, *(v.location for v in chosen)],
        hub=route.hub.location,
        crew=(route.carrier_id, route.driver_id),
        addresses=[v.address for v in chosen],
        parcels=[v.parcels for v in chosen],
        legs_s=legs,
        now=moment,
        zone=zone,
        standing_s=(moment - previous.actual_arrival).total_seconds() if standing else None,
    )


def buckets_from_errors(errors: list[tuple[str, float]]) -> dict:
    """{bucket: {"p10_min", "p90_min", "n"}} for the buckets with enough samples."""
    by_bucket: dict[str, list[float]] = {}
    for bucket, error in errors:
        by_bucket.setdefault(bucket, []).append(error)
    out = {}
    for bucket, values in by_bucket.items():
        if len(values) < MIN_SAMPLES_PER_BUCKET:
            continue
        values.sort()
        n = len(values)
        out[bucket] = {
            "p10_min": round(values[int(0.1 * (n - 1))] / 60, 2),
            "p90_min": round(values[int(0.9 * (n - 1))] / 60, 2),
            "n": n,
        }
    return out


def calibration_buckets(
    organization,
    *,
    until: date,
    days: int = DEFAULT_DAYS,
    travel_by_hour: dict | None,
    dwell_factor: float | None = None,
    step_s: int = STEP_S,
    times: LearnedTimes | None = None,
) -> dict:
    """The calibration of the `days` before `until`, not stored (the evaluation uses this)."""
    errors = replay_errors(
        organization,
        since=until - timedelta(days=days),
        until=until,
        travel_by_hour=travel_by_hour,
        dwell_factor=dwell_factor,
        step_s=step_s,
        times=times,
    )
    return buckets_from_errors(errors)


def calibrate(
    organization,
    *,
    until: date | None = None,
    days: int = DEFAULT_DAYS,
    travel_by_hour: dict | None = None,
    dwell_factor: float | None = None,
) -> EtaCalibration | None:
    """Store the organization's calibration on the `days` before `until` (default today), with
    the hourly and dwell factors the live ETAs use (default: the current ones). Idempotent: the
    same history gives back the calibration already stored. None when no bucket has enough
    samples (the prior spread stays)."""
    until = until or timezone.localdate()
    if travel_by_hour is None:
        travel_by_hour = current_travel_by_hour(organization)
    if dwell_factor is None:
        dwell_factor = current_dwell_factor(organization)
    # The live ETAs use the learned tables once trained: their windows are calibrated on them.
    times = current_times(organization)
    buckets = calibration_buckets(
        organization,
        until=until,
        days=days,
        travel_by_hour=travel_by_hour,
        dwell_factor=dwell_factor,
        times=times,
    )
    if not buckets:
        return None
    return store_calibration(
        organization,
        buckets=buckets,
        fingerprinted=[
            CALIBRATION_FORMAT,
            buckets,
            travel_by_hour,
            dwell_factor,
            times.version if times is not None else None,
        ],
        created_at=timezone.now(),
        computed_from=until - timedelta(days=days),
        computed_until=until,
        samples=sum(b["n"] for b in buckets.values()),
    )


def store_calibration(
    organization, *, buckets: dict, fingerprinted: list, created_at, computed_from,
    computed_until, samples: int,
) -> EtaCalibration:  # fmt: skip
    """A new calibration version, or the stored one with the same fingerprint (of
    `fingerprinted`: the same inputs give back the same version). The live ETAs forget what
    they cached of the organization so that the next recompute reads it."""
    fingerprint = hashlib.sha256(json.dumps(fingerprinted, sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        existing = EtaCalibration.objects.filter(
            organization=organization, fingerprint=fingerprint
        ).first()
        if existing is not None:
            return existing
        forget_learned(organization.pk)
        return EtaCalibration.objects.create(
            organization=organization,
            version=next_version(EtaCalibration, organization),
            created_at=created_at,
            computed_from=computed_from,
            computed_until=computed_until,
            samples=samples,
            buckets=buckets,
            fingerprint=fingerprint,
        )


def train_and_calibrate(
    organization, *, until: date | None = None, days: int = 28, calibration_days: int | None = None
):
    """What the nightly retrain and `train_eta` do: the model (hourly factors), then the
    calibration of the windows the live ETAs show with those factors. Both idempotent.
    Returns (EtaModel | None, EtaCalibration | None)."""
    model = train(organization, until=until, days=days)
    calibration = calibrate(
        organization,
        until=until,
        days=calibration_days or DEFAULT_DAYS,
        travel_by_hour=current_travel_by_hour(organization) or {},
        dwell_factor=current_dwell_factor(organization),
    )
    return model, calibration
