"""Incremental roll-ups: events mark (organization, day) dirty; a beat task recomputes them.

The subscriber is durable and takes backfilled history (`backfill=True`): a history import is
exactly what reports must count. It only upserts a small row per day, so the relay stays fast;
the recompute itself runs in the beat task (`carriers.sla.tasks`)."""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from carriers.sla.rollup.compute import recompute_day
from control_tower.events.catalog import Event
from control_tower.models import Organization

log = logging.getLogger(__name__)

# What changes a fact: visits, statuses, scans, proofs, ratings, windows, routes, alerts.
PATTERNS = (
    "stop.status_changed",
    "shipment.status_changed",
    "shipment.rescheduled",
    "scan.recorded",
    "pod.captured",
    "shipment.rated",
    "route.changed",
    "alert.*",
)

# Payload fields that carry the time of what happened (besides the event's own time).
_TIME_FIELDS = (
    "occurred_at",
    "captured_at",
    "delivered_at",
    "started_at",
    "at",
    "actual_arrival",
    "actual_departure",
)


def mark_dirty(*, organization_id: int, days) -> None:
    """Upsert a dirty mark per day (a later mark moves `marked_at` forward, so a recompute
    that started before it does not clear it)."""
    days = sorted(set(days))
    if not days:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO sla_dirtyday (organization_id, day, marked_at) "
            "SELECT %s, d, %s FROM unnest(%s::date[]) d "
            "ON CONFLICT (organization_id, day) DO UPDATE SET marked_at = EXCLUDED.marked_at",
            [organization_id, timezone.now(), days],
        )


def _times(payload: dict) -> list[dt.datetime]:
    found = []
    sources = [payload, payload.get("alert") or {}]
    for source in sources:
        for name in _TIME_FIELDS:
            value = source.get(name) if isinstance(source, dict) else None
            if isinstance(value, str):
                parsed = parse_datetime(value)
                if parsed is not None and timezone.is_aware(parsed):
                    found.append(parsed)
    return found


def days_of(event: Event, zone) -> set[dt.date]:
    """The local service days `event` may change: the day it happened, the days of the times
    in its payload, a route's service day, and the days a shipment's facts already sit on (a
    proof or a rating can arrive after the delivery's day)."""
    times = [event.occurred_at, *_times(event.payload)]
    days = {timezone.localtime(t, zone).date() for t in times if t is not None}
    if event.type == "route.changed" and isinstance(event.payload.get("date"), str):
        days.add(dt.date.fromisoformat(event.payload["date"]))
    route_id = event.payload.get("route") if event.type.startswith("stop.") else None
    if isinstance(route_id, int):
        # Stop and route facts sit on the route's service day.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT date FROM tracking_route WHERE organization_id = %s AND id = %s",
                [event.organization_id, route_id],
            )
            days.update(row[0] for row in cursor.fetchall())
    shipment_id = event.payload.get("shipment")
    if not isinstance(shipment_id, int) and event.aggregate_type == "shipment":
        shipment_id = int(event.aggregate_id) if event.aggregate_id.isdigit() else None
    if isinstance(shipment_id, int):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT day FROM sla_deliveryfact "
                "WHERE organization_id = %s AND shipment_id = %s",
                [event.organization_id, shipment_id],
            )
            days.update(row[0] for row in cursor.fetchall())
    return days


def on_event(event: Event) -> None:
    """The durable subscriber: mark the days `event` touches as dirty."""
    organization = Organization.objects.get(pk=event.organization_id)
    mark_dirty(organization_id=organization.pk, days=days_of(event, organization.zone))


def recompute_dirty(*, limit: int = 50, budget_s: float = 45.0) -> int:
    """Recompute dirty days, oldest mark first, until `limit` days or `budget_s` seconds, and
    clear each mark unless it was marked again meanwhile. Only one run at a time (a session
    advisory lock): a run that finds another one busy returns 0 at once, so a slow minute does
    not make two workers recompute the same days. Returns how many days were recomputed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtext('sla_rollup_dirty'))")
        if not cursor.fetchone()[0]:
            return 0
    try:
        return _recompute_dirty(limit=limit, budget_s=budget_s)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtext('sla_rollup_dirty'))")


def _recompute_dirty(*, limit: int, budget_s: float) -> int:
    began = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT organization_id, day, marked_at FROM sla_dirtyday ORDER BY marked_at LIMIT %s",
            [limit],
        )
        rows = cursor.fetchall()
    organizations = {o.pk: o for o in Organization.objects.filter(pk__in={r[0] for r in rows})}
    done = 0
    for organization_id, day, marked_at in rows:
        if time.monotonic() - began > budget_s:
            break
        organization = organizations.get(organization_id)
        if organization is not None:
            try:
                recompute_day(organization=organization, day=day)
            except Exception:
                # Keep the mark (retried next run) and go on: one bad day must not hold up
                # every other organization's numbers.
                log.exception("SLA recompute of %s %s failed", organization_id, day)
                continue
            done += 1
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM sla_dirtyday WHERE organization_id = %s AND day = %s "
                "AND marked_at <= %s",
                [organization_id, day, marked_at],
            )
    return done


def recompute_yesterdays(*, hour: int = 3) -> int:
    """Recompute yesterday of each organization whose local time is in `hour` (the nightly
    pass: by then the day's pings are all in). Returns how many days were recomputed."""
    done = 0
    now = timezone.now()
    for organization in Organization.objects.all():
        local = timezone.localtime(now, organization.zone)
        if local.hour == hour:
            recompute_day(organization=organization, day=local.date() - dt.timedelta(days=1))
            done += 1
    return done
