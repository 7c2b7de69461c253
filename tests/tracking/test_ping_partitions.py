"""The pings table's daily partitions: created ahead, rows rescued from the default partition,
per-organization retention, and the hourly beat task on a real Celery worker."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from tracking.ingest.partitions import (
    DEFAULT_PARTITION,
    apply_retention,
    create_partition,
    ensure_partitions,
    existing_partitions,
    partition_name,
)

pytestmark = pytest.mark.django_db


def insert(device, when: dt.datetime, event_id: str = "") -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracking_ping (organization_id, device_id, fix_time, event_id, location,"
            " source) VALUES (%s, %s, %s, %s, ST_SetSRID(ST_MakePoint(-71.25, -29.9), 4326), "
            "'native')",
            [device.organization_id, device.pk, when, event_id],
        )


def where(device) -> list[tuple[str, dt.datetime]]:
    """(partition, fix time) of each ping of the device."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, fix_time FROM tracking_ping WHERE device_id = %s "
            "ORDER BY fix_time",
            [device.pk],
        )
        return cursor.fetchall()


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def test_partitions_are_created_ahead_and_the_upkeep_is_idempotent(settings):
    settings.PING_PARTITIONS_AHEAD_DAYS = 3
    today = dt.date(2030, 1, 10)
    created = ensure_partitions(today=today)
    assert created == [partition_name(dt.date(2030, 1, d)) for d in range(9, 14)]
    assert ensure_partitions(today=today) == []
    assert {dt.date(2030, 1, d) for d in range(9, 14)} <= set(existing_partitions())


def test_a_fix_for_a_day_without_partition_is_kept_and_moved_when_the_day_gets_one(
    tenant, device_for
):
    device, _ = device_for(tenant)
    day = dt.date(2031, 5, 5)
    insert(device, at(day, 1), "a")
    insert(device, at(day, 23), "b")
    insert(device, at(day + dt.timedelta(days=1), 0), "c")  # the next day stays in default
    assert {p for p, _ in where(device)} == {DEFAULT_PARTITION}
    assert create_partition(day) == 2
    assert where(device) == [
        (partition_name(day), at(day, 1)),
        (partition_name(day), at(day, 23)),
        (DEFAULT_PARTITION, at(day + dt.timedelta(days=1), 0)),
    ]
    # The moved rows keep their idempotency key: a replay is still a no-op.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracking_ping (organization_id, device_id, fix_time, event_id, location,"
            " source) VALUES (%s, %s, %s, 'a', ST_SetSRID(ST_MakePoint(0, 1), 4326), 'native') "
            "ON CONFLICT DO NOTHING",
            [device.organization_id, device.pk, at(day, 1)],
        )
        assert cursor.rowcount == 0


def test_retention_is_per_organization(tenant, other_tenant, device_for):
    short = tenant.organization
    short.ping_retention_days = 10
    short.save()
    long = other_tenant.organization
    long.ping_retention_days = 40
    long.save()
    now = dt.datetime(2032, 3, 1, 12, tzinfo=dt.UTC)
    ours, _ = device_for(tenant)
    theirs, _ = device_for(other_tenant)
    days = {age: (now - dt.timedelta(days=age)).date() for age in (50, 20, 5)}
    for day in days.values():
        create_partition(day)
    very_old_in_default = now - dt.timedelta(days=400)
    for device in (ours, theirs):
        for day in days.values():
            insert(device, at(day))
        insert(device, very_old_in_default)

    result = apply_retention(now=now)

    # Past everyone's retention: dropped whole (with the test database's own current days,
    # which are years "old" on this clock).
    assert partition_name(days[50]) in result.dropped
    assert {partition_name(days[20]), partition_name(days[5])}.isdisjoint(result.dropped)
    assert days[50] not in existing_partitions()
    assert [t for _p, t in where(ours)] == [at(days[5])]
    assert [t for _p, t in where(theirs)] == [at(days[20]), at(days[5])]
    assert result.deleted_rows == 3  # ours at 20 days, and both very old rows in default
    assert apply_retention(now=now).deleted_rows == 0  # idempotent


def test_ping_partitions_command(settings):
    out = StringIO()
    call_command("ping_partitions", stdout=out)
    assert "daily partitions" in out.getvalue()
    call_command("ping_partitions", "--list", stdout=out)
    assert "created" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_beat_task_recreates_a_missing_partition_on_a_real_worker(celery_worker):
    from django.utils import timezone

    from tests.conftest import wait_for
    from tracking.tasks import maintain_ping_partitions

    tomorrow = timezone.now().astimezone(dt.UTC).date() + dt.timedelta(days=1)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {partition_name(tomorrow)}")
    assert tomorrow not in existing_partitions()
    maintain_ping_partitions.delay()
    assert wait_for(lambda: tomorrow in existing_partitions(), timeout=20)
