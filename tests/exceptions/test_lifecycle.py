"""Raising and clearing alerts: one unresolved alert per (kind, subject), its transitions and its
`alert.*` outbox rows (real PostgreSQL, the partial unique constraint included)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from control_tower.events.models import OutboxEvent
from control_tower.tenancy.scope import organization_scope
from exceptions.models import Alert, AlertState, AlertThresholds, AlertTransition
from exceptions.services import alert_clear, alert_raise
from exceptions.thresholds import DEFAULTS, forget_thresholds, thresholds_for
from tests.factories import CarrierFactory, RouteFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _outbox(type_name: str, alert: Alert) -> list[OutboxEvent]:
    return list(
        OutboxEvent.dangerously_unscoped.filter(
            type=type_name, aggregate_type="alert", aggregate_id=str(alert.pk)
        ).order_by("id")
    )


def _raise(org, route, severity="medium", **overrides):
    fields = {
        "organization_id": org.pk,
        "kind": "route_not_started",
        "subject_type": "route",
        "subject_id": route.pk,
        "severity": severity,
        "started_at": timezone.now() - timedelta(minutes=25),
        "title": f"Route {route.code} has not started",
        "detail": {"late_by_min": 25},
        "route": route,
        "carrier_id": route.carrier_id,
    }
    fields.update(overrides)
    return alert_raise(**fields)


def test_raise_creates_one_alert_one_transition_one_event(scoped):
    route = RouteFactory(organization=scoped)
    alert = _raise(scoped, route)

    assert alert.state == AlertState.OPEN
    assert alert.carrier_id == route.carrier_id
    assert alert.subject_id == str(route.pk)
    assert Alert.objects.count() == 1
    transitions = list(AlertTransition.objects.filter(alert=alert))
    assert [(t.from_state, t.to_state) for t in transitions] == [("", "open")]
    (row,) = _outbox("alert.raised", alert)
    assert row.carrier_id == route.carrier_id
    assert row.payload["id"] == alert.pk
    assert row.payload["state"] == "open"
    assert row.payload["route"] == route.pk


def test_raising_again_updates_and_severity_only_goes_up(scoped):
    route = RouteFactory(organization=scoped)
    first = _raise(scoped, route, severity="medium")
    seen = first.last_seen_at

    again = _raise(scoped, route, severity="low", detail={"late_by_min": 30})
    assert again.pk == first.pk
    assert again.severity == "medium"  # never down
    assert again.detail == {"late_by_min": 30}
    assert again.last_seen_at > seen

    higher = _raise(scoped, route, severity="high", detail={"late_by_min": 30})
    assert higher.pk == first.pk and higher.severity == "high"

    assert Alert.objects.count() == 1
    assert len(_outbox("alert.raised", first)) == 1
    updates = _outbox("alert.updated", first)
    # A new detail alone is kept on the row, not announced: only the severity step is news.
    assert [u.payload["severity"] for u in updates] == ["high"]
    severity_rows = AlertTransition.objects.filter(alert=first, details__severity="high")
    assert severity_rows.count() == 1


def test_raising_unchanged_emits_nothing_new(scoped):
    route = RouteFactory(organization=scoped)
    alert = _raise(scoped, route)
    _raise(scoped, route)
    assert _outbox("alert.updated", alert) == []
    assert Alert.objects.get(pk=alert.pk).last_seen_at >= alert.last_seen_at


def test_clear_auto_resolves_and_raise_after_resolve_opens_a_new_one(scoped):
    route = RouteFactory(organization=scoped)
    first = _raise(scoped, route)

    cleared = alert_clear(
        organization_id=scoped.pk,
        kind="route_not_started",
        subject_type="route",
        subject_id=route.pk,
        reason="route started",
    )
    assert cleared.pk == first.pk
    assert cleared.state == AlertState.RESOLVED
    assert cleared.auto_resolved is True
    assert cleared.resolution_code == "condition_cleared"
    assert cleared.resolved_at is not None
    (resolved,) = _outbox("alert.resolved", first)
    assert resolved.payload["auto_resolved"] is True

    # Nothing left to clear.
    assert (
        alert_clear(
            organization_id=scoped.pk,
            kind="route_not_started",
            subject_type="route",
            subject_id=route.pk,
            reason="again",
        )
        is None
    )

    second = _raise(scoped, route)
    assert second.pk != first.pk
    assert second.state == AlertState.OPEN
    assert Alert.objects.count() == 2


def test_snoozed_alert_stays_snoozed_until_its_time(scoped):
    route = RouteFactory(organization=scoped)
    alert = _raise(scoped, route)
    Alert.objects.filter(pk=alert.pk).update(
        state=AlertState.SNOOZED, snoozed_until=timezone.now() + timedelta(minutes=10)
    )
    assert _raise(scoped, route).state == AlertState.SNOOZED

    Alert.objects.filter(pk=alert.pk).update(snoozed_until=timezone.now() - timedelta(seconds=1))
    woken = _raise(scoped, route)
    assert woken.state == AlertState.OPEN and woken.snoozed_until is None
    assert _outbox("alert.updated", alert)[-1].payload["state"] == "open"


def test_partial_unique_constraint_holds_in_the_database(scoped):
    route = RouteFactory(organization=scoped)
    alert = _raise(scoped, route)
    duplicate = Alert(
        organization=scoped,
        kind=alert.kind,
        severity="low",
        subject_type="route",
        subject_id=alert.subject_id,
        title="copy",
        started_at=timezone.now(),
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    # A resolved one does not count: history may hold many.
    Alert.objects.filter(pk=alert.pk).update(state="resolved", resolved_at=timezone.now())
    duplicate.save()
    assert Alert.objects.filter(subject_id=alert.subject_id).count() == 2


def test_one_subject_alerts_per_kind_and_per_organization(other_org, scoped):
    route = RouteFactory(organization=scoped)
    _raise(scoped, route)
    _raise(scoped, route, kind="signal_lost")
    with organization_scope(other_org):
        other_route = RouteFactory(organization=other_org)
    # The same subject id in another tenant; the service enters that tenant's scope itself.
    with organization_scope(other_org):
        other = _raise(other_org, other_route, subject_id=route.pk)
    assert Alert.objects.count() == 2
    assert Alert.dangerously_unscoped.filter(organization=other_org).get().pk == other.pk


def test_bad_kind_is_refused(scoped):
    from tracking.errors import InvalidInput

    route = RouteFactory(organization=scoped)
    with pytest.raises(InvalidInput):
        _raise(scoped, route, kind="meteor_strike")
    assert Alert.objects.count() == 0


def test_thresholds_carrier_overrides_org_overrides_defaults(scoped):
    carrier = CarrierFactory(organization=scoped)
    forget_thresholds(scoped.pk)
    base = thresholds_for(scoped.pk, None)
    assert base.stalled_min == DEFAULTS["stalled_min"]
    assert base.pod_far_m == scoped.pod_geofence_m

    AlertThresholds.objects.create(stalled_min=12, signal_lost_min=7)
    AlertThresholds.objects.create(carrier=carrier, stalled_min=20)
    forget_thresholds(scoped.pk)
    for_org = thresholds_for(scoped.pk, None)
    for_carrier = thresholds_for(scoped.pk, carrier.pk)
    assert (for_org.stalled_min, for_org.signal_lost_min) == (12, 7)
    assert (for_carrier.stalled_min, for_carrier.signal_lost_min) == (20, 7)
    assert for_carrier.escalate_after_min == DEFAULTS["escalate_after_min"]


# ---------------------------------------------------------------------------------------------
# People working alerts, and escalation
# ---------------------------------------------------------------------------------------------


def _actor(tenant, role):
    from control_tower.tenancy.actors import actor_for_membership

    return actor_for_membership(tenant.members[role])


def test_escalation_steps_severity_until_acknowledged(tenant):
    from control_tower.tenancy.roles import Role
    from exceptions.services import alert_acknowledge, alerts_escalate

    org = tenant.organization
    route = RouteFactory(organization=org, carrier=tenant.carrier)
    forget_thresholds(org.pk)
    with organization_scope(org):
        alert = _raise(org, route, severity="high")
        after = timedelta(minutes=DEFAULTS["escalate_after_min"])

        assert alerts_escalate(alert.raised_at + after - timedelta(seconds=1)) == 0
        first = alert.raised_at + after
        assert alerts_escalate(first) == 1
        alert.refresh_from_db()
        assert (alert.severity, alert.escalation_level, alert.escalated_at) == (
            "critical",
            1,
            first,
        )
        # The next step counts from the last escalation; critical stays critical.
        assert alerts_escalate(first + after / 2) == 0
        assert alerts_escalate(first + after) == 1
        alert.refresh_from_db()
        assert (alert.severity, alert.escalation_level) == ("critical", 2)
        escalations = _outbox("alert.escalated", alert)
        assert [e.payload["escalation_level"] for e in escalations] == [1, 2]

        alert_acknowledge(actor=_actor(tenant, Role.DISPATCHER), alert_id=alert.pk)
        assert alerts_escalate(first + after * 5) == 0


def test_escalation_reads_the_carriers_threshold(tenant):
    from exceptions.services import alerts_escalate

    org = tenant.organization
    route = RouteFactory(organization=org, carrier=tenant.carrier)
    with organization_scope(org):
        AlertThresholds.objects.create(carrier=tenant.carrier, escalate_after_min=2)
        forget_thresholds(org.pk)
        alert = _raise(org, route, severity="low")
        assert alerts_escalate(alert.raised_at + timedelta(minutes=2)) == 1
        alert.refresh_from_db()
        assert alert.severity == "medium"
        transition = AlertTransition.objects.filter(alert=alert).order_by("id").last()
        assert transition.details["previous_severity"] == "low"
        assert transition.actor == "system"


def test_ended_snooze_wakes_in_the_sweep(tenant):
    from control_tower.tenancy.roles import Role
    from exceptions.services import alert_acknowledge, alert_snooze, alerts_escalate

    org = tenant.organization
    route = RouteFactory(organization=org, carrier=tenant.carrier)
    actor = _actor(tenant, Role.DISPATCHER)
    with organization_scope(org):
        alert = _raise(org, route)
        alert_acknowledge(actor=actor, alert_id=alert.pk)
        until = timezone.now() + timedelta(minutes=30)
        alert_snooze(actor=actor, alert_id=alert.pk, until=until)
        alerts_escalate(until - timedelta(minutes=1))
        alert.refresh_from_db()
        assert alert.state == AlertState.SNOOZED
        alerts_escalate(until)
        alert.refresh_from_db()
        # Back to where people had taken it; acknowledged alerts do not escalate.
        assert alert.state == AlertState.ACKNOWLEDGED and alert.escalation_level == 0
        assert _outbox("alert.updated", alert)[-1].payload["state"] == "acknowledged"


def test_clear_resolves_a_snoozed_or_assigned_alert_too(tenant):
    from control_tower.tenancy.roles import Role
    from exceptions.services import alert_assign

    org = tenant.organization
    route = RouteFactory(organization=org, carrier=tenant.carrier)
    with organization_scope(org):
        alert = _raise(org, route)
        alert_assign(
            actor=_actor(tenant, Role.DISPATCHER),
            alert_id=alert.pk,
            assignee_id=tenant.user(Role.DISPATCHER).pk,
        )
        cleared = alert_clear(
            organization_id=org.pk,
            kind=alert.kind,
            subject_type="route",
            subject_id=route.pk,
            reason="route started",
        )
        assert cleared.state == AlertState.RESOLVED
        last = AlertTransition.objects.filter(alert=alert).order_by("id").last()
        assert (last.from_state, last.to_state, last.details["reason"]) == (
            "assigned",
            "resolved",
            "route started",
        )


def test_two_processes_raising_at_once_make_one_alert(org):
    """The second raiser cannot see the first one's uncommitted alert; its insert waits on the
    partial unique index, fails when the first commits, and refreshes that alert instead."""
    import threading

    from django.db import connection

    route = RouteFactory(organization=org)
    first_inserted = threading.Event()
    results = {}

    def first():
        try:
            with transaction.atomic():
                results["first"] = _raise(org, route, severity="medium")
                first_inserted.set()
                # Hold the transaction open while the second raiser reaches its insert.
                import time

                time.sleep(0.5)
        finally:
            connection.close()

    def second():
        try:
            first_inserted.wait(5)
            results["second"] = _raise(org, route, severity="high")
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert results["second"].pk == results["first"].pk
    with organization_scope(org):
        alert = Alert.objects.get()
        assert alert.severity == "high"
        assert len(_outbox("alert.raised", alert)) == 1
        assert [e.payload["severity"] for e in _outbox("alert.updated", alert)] == ["high"]


def test_acknowledging_a_snoozed_alert_ends_the_snooze(tenant):
    from control_tower.tenancy.roles import Role
    from exceptions.services import alert_acknowledge, alert_assign, alert_snooze

    org = tenant.organization
    actor = _actor(tenant, Role.DISPATCHER)
    until = timezone.now() + timedelta(hours=1)
    with organization_scope(org):
        plain = _raise(org, RouteFactory(organization=org, carrier=tenant.carrier))
        alert_snooze(actor=actor, alert_id=plain.pk, until=until)
        plain = alert_acknowledge(actor=actor, alert_id=plain.pk)
        assert (plain.state, plain.snoozed_until) == (AlertState.ACKNOWLEDGED, None)

        held = _raise(org, RouteFactory(organization=org, carrier=tenant.carrier))
        alert_assign(actor=actor, alert_id=held.pk, assignee_id=tenant.user(Role.ADMIN).pk)
        alert_snooze(actor=actor, alert_id=held.pk, until=until)
        held = alert_acknowledge(actor=actor, alert_id=held.pk)
        assert held.state == AlertState.ASSIGNED
        assert held.assigned_to_id == tenant.user(Role.ADMIN).pk
