"""Tracking tasks (thin: call a service)."""

from __future__ import annotations

from celery import shared_task

from tracking.ingest.partitions import maintain_ping_partitions as _maintain


@shared_task(name="tracking.maintain_ping_partitions", ignore_result=True)
def maintain_ping_partitions() -> dict:
    """Hourly (beat): partitions ahead, retention applied. Spans all organizations by design:
    it works on the table's structure, not on any one tenant's data."""
    return _maintain()
