"""SLA facts and roll-ups (filled in by the SLA work)."""
