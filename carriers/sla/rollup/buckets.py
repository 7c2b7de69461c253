"""The fixed lateness histogram: P90 over any period is read from summed bucket counts.

A late delivery of x minutes falls in the bucket (previous edge, edge] of the smallest edge
>= x; the bucket's code is that edge. Resolution: 1 minute up to an hour, 5 minutes up to 3
hours, 15 minutes up to 8 hours, an hour up to a day; later than a day is one open bucket
(code OPEN_BUCKET). A percentile is reported as the upper edge of the bucket that holds it:
exact for whole minutes up to an hour, otherwise at most one bucket width above, never below
(the open bucket reports 1440, "a day or more")."""

from __future__ import annotations

LATENESS_EDGES: list[float] = (
    [float(m) for m in range(1, 61)]
    + [float(m) for m in range(65, 181, 5)]
    + [float(m) for m in range(195, 481, 15)]
    + [float(m) for m in range(540, 1441, 60)]
)
OPEN_BUCKET = 99999

# What the lateness chart shows (`selectors.lateness_distribution`): coarse bands (lo, hi]
# whose edges are edges of the fine histogram, so each fine bucket falls in exactly one band.
DISPLAY_BANDS: list[tuple[int, int | None]] = [
    (0, 5),
    (5, 15),
    (15, 30),
    (30, 60),
    (60, 120),
    (120, None),
]


def band_code(lower: int, upper: int | None) -> str:
    return f"{lower}+" if upper is None else f"{lower}-{upper}"


def band_of(bucket: int) -> str:
    for lower, upper in DISPLAY_BANDS:
        if bucket > lower and (upper is None or bucket <= upper):
            return band_code(lower, upper)
    raise ValueError(bucket)


def bucket_of(minutes: float) -> int:
    """The bucket code of a lateness (the SQL in rollup/sql.py does the same)."""
    for edge in LATENESS_EDGES:
        if minutes <= edge:
            return int(edge)
    return OPEN_BUCKET


def percentile(counts: dict[int, int], q: float) -> float | None:
    """The q-quantile (nearest rank: the smallest value with at least q of the deliveries at
    or below it) of a histogram {bucket code: count}, as the bucket's upper edge."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, -(-round(q * total * 1000) // 1000))  # ceil(q * total) without float noise
    seen = 0
    for code in sorted(counts):
        seen += counts[code]
        if seen >= rank:
            return LATENESS_EDGES[-1] if code == OPEN_BUCKET else float(code)
    return None
