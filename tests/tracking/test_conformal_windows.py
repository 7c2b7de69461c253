"""Adaptive conformal windows (tracking/eta/conformal.py) on synthetic residual streams with
and without drift: coverage holds where a fixed calibration breaks, the windows stay narrow
when nothing changes, and ACI's long-run guarantee holds on a stream that keeps switching."""

from __future__ import annotations

import random

from tracking.eta.conformal import (
    GAMMA,
    MIN_SAMPLES,
    TARGET_MISS,
    BucketState,
    calibration_buckets,
    conformal_interval,
    replay,
)


def _stream(rng: random.Random, n: int, mean_s: float, sd_s: float) -> list[float]:
    return [rng.gauss(mean_s, sd_s) for _ in range(n)]


def _coverage(state: BucketState, residuals: list[float]) -> float:
    """Feed the residuals one by one; the share that fell inside the window offered before."""
    hits = judged = 0
    for residual in residuals:
        window = state.window()
        if window is not None:
            judged += 1
            hits += window[0] <= residual <= window[1]
        state.observe(residual)
    return hits / judged


def test_the_interval_is_the_conformal_quantiles_of_the_sample():
    values = list(range(1, 100))  # 1..99
    assert conformal_interval(values, 0.2) == (10, 90)
    assert conformal_interval(values, 0.02) == (1, 99)
    assert conformal_interval([5.0] * 60, 0.2) == (5.0, 5.0)


def test_without_drift_coverage_is_the_target_and_the_window_the_p10_p90():
    rng = random.Random(7)
    state = BucketState()
    coverage = _coverage(state, _stream(rng, 4000, 0.0, 300.0))
    assert 0.77 <= coverage <= 0.83
    low, high = state.window()
    # The P10/P90 of N(0, 300 s) are ∓384 s; the sample's, within sampling error.
    assert -520 < low < -250 and 250 < high < 520


def test_after_a_drift_coverage_returns_to_the_band_where_a_fixed_calibration_breaks():
    """A rain day: from the 2,000th arrival on, parcels come 10 min later than shown and twice
    as scattered. The fixed window (the P10/P90 of the calm days) misses most of them; the
    adaptive one, after a few hundred arrivals, is back inside 75–85 %."""
    rng = random.Random(11)
    calm = _stream(rng, 2000, 0.0, 300.0)
    rain = _stream(rng, 2000, 600.0, 600.0)
    fixed_low, fixed_high = conformal_interval(calm, TARGET_MISS)
    fixed = sum(fixed_low <= r <= fixed_high for r in rain) / len(rain)
    assert fixed < 0.40

    state = BucketState()
    _coverage(state, calm)
    transition, settled = rain[:300], rain[300:]
    _coverage(state, transition)
    assert 0.75 <= _coverage(state, settled) <= 0.85


def test_the_long_run_miss_rate_meets_acis_bound_on_a_stream_that_keeps_switching():
    """Gibbs & Candès: |mean miss − target| ≤ (max(α₁, 1 − α₁) + γ) / (γ·T), whatever the
    stream. Here the spread and the bias switch every 250 arrivals."""
    rng = random.Random(3)
    residuals = []
    for block in range(24):
        residuals += _stream(rng, 250, (block % 3) * 400.0, 150.0 * (1 + block % 4))
    state = replay(("0-15", r) for r in residuals)["0-15"]
    judged = state.seen - MIN_SAMPLES
    bound = (max(TARGET_MISS, 1 - TARGET_MISS) + GAMMA) / (GAMMA * judged)
    assert abs(state.misses / judged - TARGET_MISS) <= bound


def test_replay_is_per_bucket_deterministic_and_stores_the_calibration_form():
    rng = random.Random(5)
    samples = [("0-15", r) for r in _stream(rng, 300, 0, 120)]
    samples += [("30-60", r) for r in _stream(rng, 300, 60, 600)]
    samples += [("120+", r) for r in _stream(rng, MIN_SAMPLES - 1, 0, 900)]
    first = calibration_buckets(replay(samples))
    assert first == calibration_buckets(replay(samples))
    assert set(first) == {"0-15", "30-60"}  # 120+ has too few arrivals: the prior stays
    short, wide = first["0-15"], first["30-60"]
    assert short["p10_min"] < 0 < short["p90_min"]
    assert wide["p90_min"] - wide["p10_min"] > 3 * (short["p90_min"] - short["p10_min"])
    assert short["n"] == 300 and 0 < short["alpha"] < 1
    assert 0.1 < short["miss_rate"] < 0.3
