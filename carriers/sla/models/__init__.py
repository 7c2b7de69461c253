"""Models of the SLA app, one module per concern, re-exported here."""

from carriers.sla.models.facts import (
    AlertFact,
    AttemptFact,
    DeliveryFact,
    Punctuality,
    RouteFact,
    StopFact,
)
from carriers.sla.models.rollups import COUNTERS, DailyRollup, DirtyDay, RollupCount
from carriers.sla.models.schedules import ScorecardEmail

__all__ = [
    "COUNTERS",
    "AlertFact",
    "AttemptFact",
    "DailyRollup",
    "DeliveryFact",
    "DirtyDay",
    "Punctuality",
    "RollupCount",
    "RouteFact",
    "ScorecardEmail",
    "StopFact",
]
