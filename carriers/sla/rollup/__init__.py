"""SLA facts and daily roll-ups: compute, incremental marks, the SQL (docs/SLA_METRICS.md)."""

from carriers.sla.rollup.compute import day_bounds, recompute_day, recompute_range

__all__ = ["day_bounds", "recompute_day", "recompute_range"]
