"""SLA roll-up tasks (thin: the work is in carriers/sla/rollup)."""

from __future__ import annotations

from celery import shared_task

from carriers.sla.rollup.dirty import recompute_dirty, recompute_yesterdays

SLA_ROLLUP_DIRTY = "sla.rollup_dirty"
SLA_ROLLUP_YESTERDAY = "sla.rollup_yesterday"


@shared_task(name=SLA_ROLLUP_DIRTY, ignore_result=True)
def sla_rollup_dirty() -> int:
    """Every SLA_ROLLUP_DIRTY_S seconds (beat): recompute the days events marked dirty."""
    return recompute_dirty()


@shared_task(name=SLA_ROLLUP_YESTERDAY, ignore_result=True)
def sla_rollup_yesterday() -> int:
    """Hourly (beat): each organization's yesterday, recomputed in its local 03:00 hour."""
    return recompute_yesterdays()
