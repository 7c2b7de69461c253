"""The fixed lateness histogram: P90 over any period is read from summed bucket counts.

Resolution: 1 minute up to an hour, 5 minutes up to 3 hours, 15 minutes up to 8 hours, an
hour up to a day, then one open bucket. A percentile is reported as the upper edge of the
bucket that holds it (so at most one bucket width above the exact value, never below)."""

from __future__ import annotations

LATENESS_EDGES: list[float] = (
    [float(m) for m in range(0, 60)]
    + [float(m) for m in range(60, 180, 5)]
    + [float(m) for m in range(180, 480, 15)]
    + [float(m) for m in range(480, 1440, 60)]
    + [1440.0]
)

# What the lateness chart shows (`selectors.lateness_distribution`): coarse bands whose edges
# are edges of the fine histogram, so each fine bucket falls in exactly one band.
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


def band_of(bucket_lower: int) -> str:
    for lower, upper in DISPLAY_BANDS:
        if bucket_lower >= lower and (upper is None or bucket_lower < upper):
            return band_code(lower, upper)
    raise ValueError(bucket_lower)


def upper_edge(bucket_lower: int) -> float | None:
    """The upper edge of the bucket starting at `bucket_lower` (None: the open bucket)."""
    for index, edge in enumerate(LATENESS_EDGES):
        if edge == bucket_lower:
            return LATENESS_EDGES[index + 1] if index + 1 < len(LATENESS_EDGES) else None
    raise ValueError(bucket_lower)


def percentile(counts: dict[int, int], q: float) -> float | None:
    """The q-quantile (nearest rank) of a histogram {bucket lower edge: count}, reported as
    the holding bucket's upper edge (the open bucket: its lower edge)."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, -(-int(round(q * total * 1000)) // 1000))  # ceil(q * total), float-safe
    seen = 0
    for lower in sorted(counts):
        seen += counts[lower]
        if seen >= rank:
            upper = upper_edge(lower)
            return float(lower) if upper is None else upper
    return None
