"""Storing an imported track: the GPX upload (`POST /api/v1/ingest/gpx`) and the
`import_gpx` command both end here, with the live ingest's rules (tracking/ingest/pings.py).
Parsing and validating the file is tracking/ingest/gpx.py's."""

from __future__ import annotations

from collections.abc import Callable

from carriers.models import Device
from tracking.ingest.fixes import Fix
from tracking.ingest.pings import pings_ingest
from tracking.models import PingSource


def gpx_store(
    device: Device,
    fixes: list[Fix],
    *,
    batch_size: int = 1000,
    progress: Callable[[int], object] | None = None,
) -> dict:
    """Store a parsed track in batches (each all-or-nothing); totals over all batches.
    `progress(n)` is called after each batch with the number of fixes it held."""
    totals = {"received": 0, "stored": 0, "duplicates": 0, "flagged": 0, "position_moved": False}
    for start in range(0, len(fixes), batch_size):
        batch = fixes[start : start + batch_size]
        result = pings_ingest(device=device, fixes=batch, source=PingSource.GPX).as_dict()
        for key in ("received", "stored", "duplicates", "flagged"):
            totals[key] += result[key]
        totals["position_moved"] |= result["position_moved"]
        if progress is not None:
            progress(len(batch))
    return totals
