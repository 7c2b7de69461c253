"""Roll-ups: a recompute equals a fresh compute, changes in raw rows show after a recompute,
the incremental path (event -> dirty day -> beat task) with the real Celery worker, the
command, and who sees what."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection

from carriers.sla import selectors
from carriers.sla.models import DailyRollup, DirtyDay
from carriers.sla.rollup import recompute_day
from carriers.sla.rollup.buckets import OPEN_BUCKET, bucket_of, percentile
from carriers.sla.tasks import sla_rollup_dirty
from carriers.sla.types import ReportFilters
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.conftest import wait_for
from tests.factories import HubFactory, RouteFactory, ShipmentFactory, StopFactory
from tests.sla.builders import DAY, NEXT_DAY, build_world, local, stop
from tracking.models import StopShipment
from tracking.services.stops import stop_complete

TABLES = (
    "attemptfact",
    "deliveryfact",
    "stopfact",
    "routefact",
    "alertfact",
    "dailyrollup",
    "rollupcount",
)


def _snapshot(organization) -> dict:
    """Every fact and roll-up row of the organization, without ids (order-free)."""
    out = {}
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(
                f"SELECT row_to_json(t)::jsonb - 'id' FROM sla_{table} t "  # noqa: S608
                "WHERE organization_id = %s",
                [organization.pk],
            )
            out[table] = sorted(str(row[0]) for row in cursor.fetchall())
    return out


@pytest.mark.django_db
def test_a_recompute_equals_a_fresh_compute(tenant):
    world = build_world(tenant)
    org = world.organization
    for day in (DAY, NEXT_DAY):
        recompute_day(organization=org, day=day)
    first = _snapshot(org)
    assert all(first[table] for table in TABLES)
    for day in (DAY, NEXT_DAY, DAY):
        recompute_day(organization=org, day=day)
    assert _snapshot(org) == first
    # A change in raw rows shows after a recompute, and equals computing from nothing.
    s4 = world.stops["S4"]
    s4.status, s4.failure_reason = "failed", "refused"
    s4.save()
    recompute_day(organization=org, day=DAY)
    changed = _snapshot(org)
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"DELETE FROM sla_{table}")  # noqa: S608
    for day in (DAY, NEXT_DAY):
        recompute_day(organization=org, day=day)
    assert _snapshot(org) == changed != first
    with organization_scope(org):
        totals = DailyRollup.objects.filter(day=DAY)
        assert (
            sum(r.deliveries for r in totals) == 5 and sum(r.failed_attempts for r in totals) == 3
        )


def test_lateness_buckets_and_percentile():
    assert bucket_of(0.5) == 1 and bucket_of(30.0) == 30 and bucket_of(30.01) == 31
    assert bucket_of(61) == 65 and bucket_of(5000) == OPEN_BUCKET
    assert percentile({}, 0.9) is None
    # Ten late deliveries: nine in (4, 5], one in (55, 60] -> P90 is the ninth: 5.
    assert percentile({5: 9, 60: 1}, 0.9) == 5.0
    assert percentile({5: 8, 60: 2}, 0.9) == 60.0
    assert percentile({OPEN_BUCKET: 1}, 0.9) == 1440.0


def _second_carrier_day(tenant):
    """Another carrier of the same organization with one on-time delivery on DAY."""
    from tests.factories import CarrierFactory

    org = tenant.organization
    other = CarrierFactory(organization=org, code="other-3pl", name="Other 3PL")
    route = RouteFactory(
        organization=org,
        carrier=other,
        hub=HubFactory(organization=org),
        date=DAY,
        status="completed",
        started_at=local(org, 9),
        completed_at=local(org, 10),
    )
    shipment = ShipmentFactory(
        organization=org,
        carrier=other,
        promised_window_start=local(org, 9),
        promised_window_end=local(org, 11),
    )
    stop(route, 1, [shipment], arrive=local(org, 9, 30), depart=local(org, 9, 35))
    return other


@pytest.mark.django_db
def test_a_carrier_user_sees_only_its_carrier_and_a_driver_nothing(tenant):
    world = build_world(tenant)
    other = _second_carrier_day(tenant)
    org = world.organization
    recompute_day(organization=org, day=DAY)
    filters = ReportFilters(date_from=DAY, date_to=DAY)
    ops = actor_for_membership(tenant.members[Role.OPS_MANAGER])
    carrier_user = actor_for_membership(tenant.members[Role.CARRIER_USER])
    driver = actor_for_membership(tenant.members[Role.DRIVER])
    with organization_scope(org):
        assert {r.carrier_id for r in selectors.scorecard(actor=ops, filters=filters).rows} == {
            world.carrier.pk,
            other.pk,
        }
        assert selectors.scorecard(actor=ops, filters=filters).total.metrics[
            "deliveries"
        ].value == (7.0)
        mine = selectors.scorecard(actor=carrier_user, filters=filters)
        assert [r.carrier_id for r in mine.rows] == [world.carrier.pk]
        assert mine.total.metrics["deliveries"].value == 6.0
        # Judged against its own carrier's policy, even in total.
        assert mine.total.metrics["on_time_pct"].status == "breach"
        drill = selectors.drilldown(actor=carrier_user, filters=filters, metric="deliveries")
        assert drill.count == 6
        assert all(row["carrier_name"] == world.carrier.name for row in drill.rows)
        by_day = selectors.scorecard(actor=carrier_user, filters=filters, group="day")
        assert by_day.rows[0].metrics["deliveries"].value == 6.0
        nothing = selectors.scorecard(actor=driver, filters=filters)
        assert nothing.rows == [] and nothing.total.metrics["deliveries"].value is None
        assert selectors.drilldown(actor=driver, filters=filters, metric="deliveries").count == 0


@pytest.mark.django_db
def test_another_organization_sees_nothing(tenant, other_tenant):
    build_world(tenant)
    recompute_day(organization=tenant.organization, day=DAY)
    filters = ReportFilters(date_from=DAY, date_to=DAY)
    stranger = actor_for_membership(other_tenant.members[Role.OWNER])
    with organization_scope(other_tenant.organization):
        card = selectors.scorecard(actor=stranger, filters=filters)
        assert card.rows == [] and card.total.metrics["deliveries"].value is None
        assert selectors.drilldown(actor=stranger, filters=filters, metric="deliveries").rows == []
        assert selectors.failure_reasons(actor=stranger, filters=filters).rows == []
        assert selectors.planning_history(actor=stranger, filters=filters) == []


@pytest.mark.django_db
def test_the_command_rolls_up_a_range(tenant, capsys):
    build_world(tenant)
    call_command(
        "sla_rollup",
        "--org",
        tenant.organization.slug,
        "--from",
        DAY.isoformat(),
        "--to",
        NEXT_DAY.isoformat(),
    )
    out = capsys.readouterr().out
    assert DAY.isoformat() in out and NEXT_DAY.isoformat() in out and "2 day(s)" in out
    with organization_scope(tenant.organization):
        assert DailyRollup.objects.filter(day__in=[DAY, NEXT_DAY]).count() >= 2


@pytest.mark.django_db(transaction=True)
def test_an_event_marks_the_day_dirty_and_the_beat_task_updates_the_numbers(tenant, celery_worker):
    org = tenant.organization
    today = dt.datetime.now(org.zone).date()
    route = RouteFactory(organization=org, carrier=tenant.carrier, date=today, status="in_progress")
    stop_row = StopFactory(organization=org, route=route, sequence=1)
    shipment = ShipmentFactory(organization=org, carrier=tenant.carrier, status="out_for_delivery")
    StopShipment(organization=org, stop=stop_row, shipment=shipment).save()
    ops = actor_for_membership(tenant.members[Role.OPS_MANAGER])
    filters = ReportFilters(date_from=today, date_to=today)

    def deliveries():
        with organization_scope(org):
            return selectors.scorecard(actor=ops, filters=filters).total.metrics["deliveries"].value

    assert deliveries() is None
    with organization_scope(org):
        stop_complete(stop=stop_row, actor=ops)
    # The relay (on the worker) hands the events to the SLA subscriber: the day is dirty.
    wait_for(lambda: DirtyDay.dangerously_unscoped.filter(organization=org, day=today).exists())
    sla_rollup_dirty.delay()
    wait_for(lambda: deliveries() == 1.0, timeout=20)
    assert not DirtyDay.dangerously_unscoped.filter(organization=org, day=today).exists()


def test_the_beat_entries_name_registered_tasks(settings):
    from control_tower.celery import app

    app.loader.import_default_modules()
    names = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"sla.rollup_dirty", "sla.rollup_yesterday"} <= names
    assert {"sla.rollup_dirty", "sla.rollup_yesterday"} <= set(app.tasks)


@pytest.mark.django_db
def test_the_nightly_pass_recomputes_yesterday_in_the_local_small_hours(tenant):
    from carriers.sla.rollup.dirty import recompute_yesterdays

    org = tenant.organization
    now = dt.datetime.now(org.zone)
    yesterday = now.date() - dt.timedelta(days=1)
    route = RouteFactory(
        organization=org,
        carrier=tenant.carrier,
        date=yesterday,
        status="completed",
        started_at=now - dt.timedelta(days=1, hours=2),
        completed_at=now - dt.timedelta(days=1, hours=1),
    )
    assert recompute_yesterdays(hour=(now.hour + 1) % 24) == 0  # not its hour: nothing
    assert recompute_yesterdays(hour=now.hour) >= 1
    with organization_scope(org):
        assert DailyRollup.objects.get(day=yesterday, carrier=route.carrier).routes == 1


@pytest.mark.django_db
def test_the_days_an_event_touches(tenant):
    from carriers.sla.rollup.dirty import days_of, on_event
    from control_tower.events.catalog import make_event

    org = tenant.organization
    world = build_world(tenant)
    recompute_day(organization=org, day=DAY)
    # A carrier feed's scan recorded late at night for the afternoon before, local time.
    scan_event = make_event(
        "scan.recorded",
        organization_id=org.pk,
        carrier_id=world.carrier.pk,
        aggregate_id=world.shipments["G"].pk,
        payload={"id": 1, "shipment": None, "occurred_at": local(org, 23, 30).isoformat()},
        occurred_at=local(org, 1, 0, NEXT_DAY),
    )
    assert days_of(scan_event, org.zone) == {DAY, NEXT_DAY}
    # A rating arriving days later re-judges the day its shipment was delivered.
    rating_event = make_event(
        "shipment.rated",
        organization_id=org.pk,
        carrier_id=world.carrier.pk,
        aggregate_id=world.shipments["A"].pk,
        payload={"id": 9, "shipment": world.shipments["A"].pk},
        occurred_at=local(org, 12, 0, DAY + dt.timedelta(days=5)),
    )
    assert days_of(rating_event, org.zone) == {DAY, DAY + dt.timedelta(days=5)}
    # A stop event: its route's service day too.
    stop_event = make_event(
        "stop.status_changed",
        organization_id=org.pk,
        carrier_id=world.carrier.pk,
        aggregate_id=world.route.pk,
        payload={"id": world.stops["S1"].pk, "route": world.route.pk},
        occurred_at=local(org, 2, 0, NEXT_DAY),
    )
    assert days_of(stop_event, org.zone) == {DAY, NEXT_DAY}
    with organization_scope(org):
        on_event(stop_event)
        assert set(DirtyDay.objects.values_list("day", flat=True)) == {DAY, NEXT_DAY}


@pytest.mark.django_db(transaction=True)
def test_one_dirty_run_at_a_time(tenant):
    import psycopg
    from django.conf import settings as django_settings

    from carriers.sla.rollup.dirty import mark_dirty, recompute_dirty

    org = tenant.organization
    mark_dirty(organization_id=org.pk, days=[DAY])
    db = django_settings.DATABASES["default"]
    other = psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname=db["NAME"],
        password=db["PASSWORD"] or None,
        autocommit=True,
    )
    try:
        other.execute("SELECT pg_advisory_lock(hashtext('sla_rollup_dirty'))")
        assert recompute_dirty() == 0  # another run holds it: leave the days to it
        other.execute("SELECT pg_advisory_unlock(hashtext('sla_rollup_dirty'))")
    finally:
        other.close()
    assert recompute_dirty() == 1
    assert not DirtyDay.dangerously_unscoped.filter(organization=org).exists()
