"""Celery tasks (thin: the work is in dispatch.py). `webhooks.dispatch_due` runs from beat
every 5 s and is queued by the fan-out after commit."""

from __future__ import annotations

from celery import shared_task

from webhooks import dispatch


@shared_task(name="webhooks.dispatch_due", ignore_result=True)
def dispatch_due() -> int:
    return dispatch.dispatch_due()
