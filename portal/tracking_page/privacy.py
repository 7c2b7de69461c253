"""Which positions a tracking page may show, decided once for the page, its JSON and its socket.

Rules (docs/TRACKING_PAGE.md "Privacy"):
- The vehicle's exact position only while the recipient's stop is the next one of a running
  route, or its ETA is within the organization's `tracking_live_minutes`. Before that the page
  says how far away the driver is, rounded (a few km), never where.
- Never the positions of other customers' stops, never the route driven before this stop.
- A fix older than TRACKING_STALE_S is shown as "last seen N min ago", not as a live dot.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from tracking.geo import distance_m

# Rounded to 5 decimals (~1 m) when exact positions may be shown.
EXACT_DIGITS = 5


def is_live(
    *,
    route_running: bool,
    stop_open: bool,
    stops_before: int | None,
    eta: datetime | None,
    now: datetime,
    live_minutes: int,
) -> bool:
    """Whether the driver may be shown on the map to this recipient."""
    if not (route_running and stop_open) or stops_before is None:
        return False
    if stops_before == 0:
        return True
    return eta is not None and eta - now <= timedelta(minutes=live_minutes)


def exact(lat: float, lon: float) -> dict:
    return {"lat": round(lat, EXACT_DIGITS), "lon": round(lon, EXACT_DIGITS)}


def coarse_distance_km(lat: float, lon: float, to_lat: float, to_lon: float) -> int:
    """The straight-line distance rounded up: whole km under 10 km, then to 5 km. A distance to
    the recipient's own address, rounded, says how long to wait, not where the driver is."""
    km = distance_m(lat, lon, to_lat, to_lon) / 1000
    if km < 10:
        return max(1, math.ceil(km))
    return int(math.ceil(km / 5) * 5)
