"""The ETA window as the customer reads it: rounded outward to what is honest.

The ETA engine gives a P10–P90 window to the second; a customer reads "between 14:10 and
14:40". Rounding outward (start down, end up) never makes the window look narrower than the
model's, and the step shrinks as the arrival nears, so the window narrows as the driver
approaches (docs/TRACKING_PAGE.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

# (arrival at least this many minutes away, rounding step in minutes), first match wins.
STEPS_MIN = ((180, 30), (60, 15), (20, 10), (0, 5))
# A window never shows narrower than this (minutes): a 2-minute window is false precision.
MIN_WIDTH_MIN = 10


def rounding_step_min(minutes_away: float) -> int:
    for threshold, step in STEPS_MIN:
        if minutes_away >= threshold:
            return step
    return STEPS_MIN[-1][1]


def _floor(value: datetime, step_min: int) -> datetime:
    minute_of_day = value.hour * 60 + value.minute
    floored = minute_of_day - minute_of_day % step_min
    return value.replace(hour=floored // 60, minute=floored % 60, second=0, microsecond=0)


def _ceil(value: datetime, step_min: int) -> datetime:
    floored = _floor(value, step_min)
    return floored if floored == value else floored + timedelta(minutes=step_min)


def honest_window(
    *, earliest: datetime, latest: datetime, now: datetime, zone
) -> tuple[datetime, datetime]:
    """(start, end) in `zone`: `earliest` rounded down and `latest` up to a step that depends
    on how far away the arrival is, at least MIN_WIDTH_MIN wide, never starting in the past."""
    if latest < earliest:
        earliest, latest = latest, earliest
    earliest = max(earliest, now)
    latest = max(latest, earliest)
    minutes_away = (earliest - now).total_seconds() / 60
    step = rounding_step_min(minutes_away)
    start = _floor(earliest.astimezone(zone), step)
    end = _ceil(latest.astimezone(zone), step)
    if end - start < timedelta(minutes=MIN_WIDTH_MIN):
        end = start + timedelta(minutes=max(MIN_WIDTH_MIN, step))
    return start, end
