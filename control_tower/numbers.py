"""Numbers on their way out: JSON has no Infinity or NaN, and a browser's JSON.parse throws on
them, so every serializer of measured values turns a non-finite number into null."""

from __future__ import annotations

import math


def finite_or_none(value, *, digits: int | None = None) -> float | None:
    """`value` as a float (rounded to `digits` when given), or None when it is missing or not
    a finite number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number):
        return None
    return number if digits is None else round(number, digits)
