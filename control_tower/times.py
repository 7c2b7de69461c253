"""How every API body and socket message spells a point in time, named once: ISO 8601 in UTC
with its offset (`2026-03-02T14:05:00+00:00`). Screens convert to the tenant's time zone; the
wire never depends on the server's TIME_ZONE setting."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(value: datetime | None) -> str | None:
    """`value` in UTC as ISO 8601 with offset, or None. Database times already come back in UTC,
    so the conversion is a no-op for them (this runs thousands of times per console snapshot)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat()
