"""Upkeep of the pings table, partitioned by day of fix time (UTC).

`tracking_ping` is `PARTITION BY RANGE (fix_time)` with one partition per UTC day
(`tracking_ping_pYYYYMMDD`) and a DEFAULT partition that catches whatever falls outside them
(a phone that was offline for a week, a clock set to 2038). So an insert never fails for lack of
a partition, and the upkeep may run late without losing anything.

`maintain_ping_partitions()` (Celery beat, hourly; `manage.py ping_partitions`) is idempotent:
1. creates the partitions from yesterday to N days ahead; a day that already has rows in the
   default partition gets them moved into its new partition, under a lock, in one transaction;
2. applies each organization's retention: partitions older than the longest retention are
   dropped whole (cheap), and rows of organizations with a shorter retention are deleted from
   the partitions that remain.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from control_tower.models import Organization

logger = logging.getLogger(__name__)

PARENT = "tracking_ping"
DEFAULT_PARTITION = "tracking_ping_default"
PARTITION_NAME = re.compile(r"^tracking_ping_p(\d{8})$")


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def existing_partitions() -> dict[date, str]:
    """Daily partitions attached to the parent, by day."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname
            FROM pg_inherits
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE parent.relname = %s
            """,
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = {}
    for name in names:
        match = PARTITION_NAME.match(name)
        if match:
            days[datetime.strptime(match.group(1), "%Y%m%d").date()] = name  # noqa: DTZ007
    return days


def create_partition(day: date) -> int:
    """Create the partition of `day`, moving that day's rows out of the default partition.
    Returns how many rows were moved. Call only for a day that has no partition yet."""
    name = partition_name(day)
    start, end = _bounds(day)
    with transaction.atomic(), connection.cursor() as cursor:
        # Writers that would land in the default partition wait for this transaction; writers
        # into other partitions are not blocked.
        cursor.execute(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
            f"WHERE fix_time >= %s AND fix_time < %s RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved",
            [start, end],
        )
        moved = cursor.rowcount
        # A matching CHECK lets ATTACH skip its validation scan.
        cursor.execute(
            f"ALTER TABLE {name} ADD CONSTRAINT {name}_range "
            f"CHECK (fix_time >= %s AND fix_time < %s)",
            [start, end],
        )
        cursor.execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
        cursor.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range")
    if moved:
        logger.info("partition %s created; %s rows moved from the default partition", name, moved)
    return moved


def ensure_partitions(*, today: date | None = None, ahead_days: int | None = None) -> list[str]:
    """Partitions from yesterday to `ahead_days` after today; returns the names created."""
    today = today or timezone.now().astimezone(UTC).date()
    ahead = settings.PING_PARTITIONS_AHEAD_DAYS if ahead_days is None else ahead_days
    have = existing_partitions()
    created = []
    for offset in range(-1, ahead + 1):
        day = today + timedelta(days=offset)
        if day not in have:
            create_partition(day)
            created.append(partition_name(day))
    return created


@dataclass
class RetentionResult:
    dropped: list[str] = field(default_factory=list)
    deleted_rows: int = 0


def apply_retention(*, now: datetime | None = None) -> RetentionResult:
    """Delete pings older than each organization's `ping_retention_days`."""
    now = now or timezone.now()
    result = RetentionResult()
    retention = dict(Organization.objects.values_list("id", "ping_retention_days"))
    longest = max(retention.values(), default=settings.PING_DEFAULT_RETENTION_DAYS)
    # Partitions whose whole day is past everyone's retention go at once.
    horizon = now - timedelta(days=longest)
    for day, name in sorted(existing_partitions().items()):
        if _bounds(day)[1] <= horizon:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
            result.dropped.append(name)
    with connection.cursor() as cursor:
        # Organizations whose retention is shorter, and old rows left in the default partition.
        for organization_id, days in retention.items():
            cursor.execute(
                f"DELETE FROM {PARENT} WHERE organization_id = %s AND fix_time < %s",
                [organization_id, now - timedelta(days=days)],
            )
            result.deleted_rows += cursor.rowcount
        # Rows of organizations that no longer exist.
        cursor.execute(
            f"DELETE FROM {PARENT} WHERE fix_time < %s AND organization_id <> ALL(%s)",
            [now - timedelta(days=longest), list(retention)],
        )
        result.deleted_rows += cursor.rowcount
    return result


def maintain_ping_partitions(*, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    created = ensure_partitions(today=now.astimezone(UTC).date())
    retention = apply_retention(now=now)
    return {
        "created": created,
        "dropped": retention.dropped,
        "deleted_rows": retention.deleted_rows,
    }
