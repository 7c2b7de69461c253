"""Exceptions tasks (thin: call the sweep)."""

from __future__ import annotations

from celery import shared_task

from exceptions.sweep import sweep_all

EXCEPTIONS_SWEEP = "exceptions.sweep"


@shared_task(name=EXCEPTIONS_SWEEP, ignore_result=True)
def exceptions_sweep() -> int:
    """Every EXCEPTIONS_SWEEP_S seconds (beat): the time-based rules and escalation for every
    active organization (exceptions/sweep.py)."""
    return sweep_all()
