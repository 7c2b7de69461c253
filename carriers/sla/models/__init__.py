"""Models of the SLA app, one module per concern, re-exported here."""

from carriers.sla.models.schedules import ScorecardEmail

__all__ = ["ScorecardEmail"]
