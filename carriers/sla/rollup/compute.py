"""Rebuild one (organization, service day) of SLA facts and roll-ups, idempotently."""

from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.db import connection, transaction

from carriers.sla.rollup import sql
from carriers.sla.rollup.buckets import LATENESS_EDGES, OPEN_BUCKET
from control_tower.models import Organization
from tracking.models import FailureReason


def day_bounds(organization: Organization, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The aware start and end (exclusive) of the local service day `day`."""
    zone = organization.zone
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start, end


def day_params(organization: Organization, day: dt.date) -> dict:
    start, end = day_bounds(organization, day)
    return {
        "org": organization.pk,
        "day": day,
        "start": start,
        "end": end,
        "tz": str(organization.zone),
        "fresh_s": int(settings.SLA_FRESH_FIX_SECONDS),
        "grid": float(settings.SLA_GRID_DEGREES),
        "reasons": list(FailureReason.values),
        "edges": LATENESS_EDGES,
        "open_bucket": OPEN_BUCKET,
    }


def recompute_day(*, organization: Organization, day: dt.date) -> float:
    """Delete and rebuild the facts, roll-ups and category counts of `organization` on the
    local service day `day`, in one transaction (readers see the old day or the new one, never
    half). Safe to repeat: the result depends only on the raw rows. Returns the seconds it took."""
    began = time.monotonic()
    params = day_params(organization, day)
    with transaction.atomic(), connection.cursor() as cursor:
        # Two recomputes of one day must not interleave their delete and insert.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"sla_day:{organization.pk}:{day.isoformat()}"],
        )
        for statement in sql.DELETE:
            cursor.execute(statement, params)
        for statement in (sql.ATTEMPTS, sql.DELIVERIES, sql.STOPS, sql.ROUTES, sql.ALERTS):
            cursor.execute(statement, params)
        cursor.execute(sql.ROLLUP, params)
        cursor.execute(sql.COUNTS, params)
    return time.monotonic() - began


def recompute_range(
    *, organization: Organization, date_from: dt.date, date_to: dt.date
) -> list[tuple[dt.date, float]]:
    """`recompute_day` for each day of the inclusive range: [(day, seconds)]."""
    out = []
    day = date_from
    while day <= date_to:
        out.append((day, recompute_day(organization=organization, day=day)))
        day += dt.timedelta(days=1)
    return out
