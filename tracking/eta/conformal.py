"""Windows that stay honest: adaptive conformal inference (ACI; Gibbs & Candès, "Adaptive
Conformal Inference Under Distribution Shift", NeurIPS 2021) on the residuals of the ETAs that
were really shown (actual arrival − ETA), per bucket of predicted horizon.

Per bucket, a stream of residuals in arrival order. The window offered for the next arrival is
the split-conformal interval of the most recent `WINDOW_N` residuals at miss level `alpha_t`:
their `alpha_t / 2` and `1 − alpha_t / 2` quantiles (with the finite-sample correction). After
each arrival `alpha_t` moves by `GAMMA × (target miss − missed)`: a run of misses (a rain day, a
new driver) lowers it, which widens the window until coverage is back; a run of hits narrows it.
Over any long stretch the miss rate converges to the target whatever the drift (the paper's
guarantee: |mean miss − target| ≤ (max(α₁, 1 − α₁) + γ) / (γ T)).

Pure functions over plain numbers; `tracking/eta/conformal_store.py` feeds them the history and
stores the result as an `EtaCalibration` the live ETAs read.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

TARGET_MISS = 0.20  # a P10–P90 window: the arrival outside it 20 % of the time
GAMMA = 0.01  # ACI's step: ~100 arrivals to move alpha by the target's size
WINDOW_N = 400  # residuals remembered per bucket (the most recent)
MIN_SAMPLES = 50  # fewer: no conformal window for the bucket (the calibration/prior stays)
ALPHA_MIN, ALPHA_MAX = 0.005, 0.9  # keep the quantiles inside the sample


@dataclass
class BucketState:
    """One bucket's stream: the current miss level and the recent residuals (seconds)."""

    alpha: float = TARGET_MISS
    residuals: deque = field(default_factory=lambda: deque(maxlen=WINDOW_N))
    seen: int = 0
    misses: int = 0  # among the arrivals that had a window

    def window(self) -> tuple[float, float] | None:
        """(low, high) offsets from the ETA in seconds, or None with too few residuals."""
        if len(self.residuals) < MIN_SAMPLES:
            return None
        return conformal_interval(list(self.residuals), self.alpha)

    def observe(
        self,
        residual_s: float,
        *,
        target: float = TARGET_MISS,
        gamma: float = GAMMA,
        offered: tuple[float, float] | None = None,
    ):
        """One arrival: judge the window that was offered for it (`offered`, when it was shown
        long before the arrival: a 4-hour-ahead window was this bucket's of 4 hours ago; else
        the bucket's window now), move alpha, remember."""
        offered = offered if offered is not None else self.window()
        if offered is not None:
            missed = not (offered[0] <= residual_s <= offered[1])
            self.misses += missed
            self.alpha = min(ALPHA_MAX, max(ALPHA_MIN, self.alpha + gamma * (target - missed)))
        self.residuals.append(residual_s)
        self.seen += 1


def conformal_interval(residuals: list[float], alpha: float) -> tuple[float, float]:
    """The split-conformal interval of `residuals` at miss level `alpha`, split evenly between
    the two tails: the ⌊(n+1)·α/2⌋-th smallest and the ⌈(n+1)·(1 − α/2)⌉-th smallest (clamped
    to the sample)."""
    values = sorted(residuals)
    n = len(values)
    low_rank = math.floor((n + 1) * alpha / 2)
    high_rank = math.ceil((n + 1) * (1 - alpha / 2))
    low = values[min(max(low_rank, 1), n) - 1]
    high = values[min(max(high_rank, 1), n) - 1]
    return low, high


def replay(
    samples: Iterable[tuple[str, float]],
    *,
    states: dict[str, BucketState] | None = None,
    target: float = TARGET_MISS,
    gamma: float = GAMMA,
) -> dict[str, BucketState]:
    """Run ACI over (bucket, residual seconds) in arrival order; returns the states."""
    states = states if states is not None else {}
    for bucket, residual_s in samples:
        states.setdefault(bucket, BucketState()).observe(residual_s, target=target, gamma=gamma)
    return states


def calibration_buckets(states: dict[str, BucketState]) -> dict:
    """The `EtaCalibration.buckets` form the live ETAs read ({bucket: {"p10_min", "p90_min",
    "n"}}), plus what ACI knows: the current alpha and the miss rate of its own windows."""
    out = {}
    for bucket, state in sorted(states.items()):
        offsets = state.window()
        if offsets is None:
            continue
        judged = state.seen - MIN_SAMPLES
        out[bucket] = {
            "p10_min": round(offsets[0] / 60, 2),
            "p90_min": round(offsets[1] / 60, 2),
            "n": len(state.residuals),
            "alpha": round(state.alpha, 4),
            "miss_rate": round(state.misses / judged, 4) if judged > 0 else None,
        }
    return out
