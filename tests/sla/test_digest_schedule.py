"""When the weekly scorecard e-mail is due: its weekday and hour in the organization's time zone,
once a week, claimed atomically so a second run (or a second worker) sends nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from carriers.sla import digest
from carriers.sla.models import ScorecardEmail
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope

pytestmark = pytest.mark.django_db

# Monday 7 December 2026, 10:30 UTC = 07:30 in Santiago (UTC-3 in summer).
MONDAY_0730_SANTIAGO = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)


def _schedule(tenant, **fields) -> ScorecardEmail:
    fields.setdefault("created_at", MONDAY_0730_SANTIAGO - timedelta(days=30))
    with organization_scope(tenant.organization):
        schedule = ScorecardEmail.objects.create(
            organization=tenant.organization, name="Weekly", **fields
        )
        schedule.recipients.set([tenant.members[Role.OPS_MANAGER]])
    return schedule


def test_the_slot_is_the_weekday_and_hour_in_the_organizations_zone(tenant):
    assert tenant.organization.time_zone == "America/Santiago"
    schedule = _schedule(tenant, weekday=0, hour=7)
    slot = digest.last_slot(schedule=schedule, now=MONDAY_0730_SANTIAGO)
    assert slot == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    # At 06:59 local the slot that has come is last Monday's.
    early = datetime(2026, 12, 7, 9, 59, tzinfo=UTC)
    assert digest.last_slot(schedule=schedule, now=early) == slot - timedelta(days=7)
    # Friday 18:00 local, seen on Monday: last Friday.
    friday = _schedule(tenant, weekday=4, hour=18)
    assert digest.last_slot(schedule=friday, now=MONDAY_0730_SANTIAGO) == datetime(
        2026, 12, 4, 21, 0, tzinfo=UTC
    )


def test_due_once_a_week(tenant):
    schedule = _schedule(tenant, weekday=0, hour=7)
    assert digest.is_due(schedule=schedule, now=MONDAY_0730_SANTIAGO)
    schedule.last_sent_at = datetime(2026, 12, 7, 10, 15, tzinfo=UTC)
    assert not digest.is_due(schedule=schedule, now=MONDAY_0730_SANTIAGO)
    assert not digest.is_due(schedule=schedule, now=MONDAY_0730_SANTIAGO + timedelta(days=6))
    assert digest.is_due(schedule=schedule, now=MONDAY_0730_SANTIAGO + timedelta(days=7))
    schedule.is_active = False
    assert not digest.is_due(schedule=schedule, now=MONDAY_0730_SANTIAGO + timedelta(days=7))


def test_a_schedule_created_after_this_weeks_slot_waits_for_next_week(tenant):
    schedule = _schedule(
        tenant, weekday=0, hour=7, created_at=datetime(2026, 12, 7, 10, 20, tzinfo=UTC)
    )
    assert not digest.is_due(schedule=schedule, now=MONDAY_0730_SANTIAGO)
    assert digest.is_due(schedule=schedule, now=MONDAY_0730_SANTIAGO + timedelta(days=7))


def test_the_period_is_the_complete_days_before_the_sending_day():
    assert digest.report_period(period_days=7, sending_day=date(2026, 12, 7)) == (
        date(2026, 11, 30),
        date(2026, 12, 6),
    )
    assert digest.report_period(period_days=1, sending_day=date(2026, 12, 7)) == (
        date(2026, 12, 6),
        date(2026, 12, 6),
    )


def test_the_claim_is_taken_once(tenant):
    schedule = _schedule(tenant, weekday=0, hour=7)
    slot = digest.last_slot(schedule=schedule, now=MONDAY_0730_SANTIAGO)
    with organization_scope(tenant.organization):
        assert digest._claim(schedule, slot=slot, now=MONDAY_0730_SANTIAGO)
        assert not digest._claim(schedule, slot=slot, now=MONDAY_0730_SANTIAGO)
    schedule.refresh_from_db()
    assert schedule.last_sent_at == MONDAY_0730_SANTIAGO


def test_running_twice_handles_a_schedule_once(tenant):
    # A recipient without an e-mail address: the run claims the schedule, renders nothing.
    member = tenant.members[Role.OPS_MANAGER]
    member.user.email = ""
    member.user.save(update_fields=["email"])
    schedule = _schedule(tenant, weekday=0, hour=7)
    first = digest.scorecard_emails_send_due(now=MONDAY_0730_SANTIAGO)
    assert (first.schedules, first.sent, first.skipped, first.failed) == (1, 0, 1, 0)
    second = digest.scorecard_emails_send_due(now=MONDAY_0730_SANTIAGO + timedelta(minutes=15))
    assert second.schedules == 0
    schedule.refresh_from_db()
    assert schedule.last_sent_at == MONDAY_0730_SANTIAGO


def test_not_due_and_inactive_schedules_are_left_alone(tenant):
    sent_wednesday = datetime(2026, 12, 2, 10, 5, tzinfo=UTC)
    _schedule(tenant, weekday=2, hour=7, last_sent_at=sent_wednesday)  # sent last Wednesday
    _schedule(tenant, weekday=0, hour=7, is_active=False)
    outcome = digest.scorecard_emails_send_due(now=MONDAY_0730_SANTIAGO)
    assert outcome.schedules == 0
    with organization_scope(tenant.organization):
        assert list(ScorecardEmail.objects.values_list("last_sent_at", flat=True)) == [
            sent_wednesday,
            None,
        ]


def test_the_command_names_an_unknown_organization():
    with pytest.raises(CommandError, match="nowhere"):
        call_command("send_scorecard_emails", "--org", "nowhere")
