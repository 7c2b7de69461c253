"""Every change to an alert: raised and cleared by the rules, worked by people, escalated by
the sweep. Each call is one transaction that writes the alert, an `AlertTransition` row for a
change of state (or severity) and one `alert.*` event. docs/EXCEPTIONS.md."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from control_tower.errors import IllegalTransition
from control_tower.events import emit, make_event
from control_tower.models import Membership, Organization
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.roles import WRITE, Resource, role_allows
from control_tower.tenancy.scope import get_scope, organization_scope
from exceptions import events as alert_events
from exceptions.models import (
    SEVERITY_ORDER,
    UNRESOLVED_STATES,
    Alert,
    AlertKind,
    AlertState,
    AlertTransition,
    ResolutionCode,
    Severity,
    SubjectType,
    severity_rank,
)
from exceptions.representation import alert_data
from exceptions.thresholds import thresholds_for
from tracking.errors import InvalidInput, NotFound

# Longest snooze a person may ask for: an alert snoozed for weeks is an alert forgotten.
MAX_SNOOZE = timedelta(days=7)
SYSTEM = "system"
UNIQUE_UNRESOLVED = "alert_one_unresolved_per_subject"

# Person-driven transitions: from which states each is allowed.
ALLOWED_FROM = {
    "acknowledge": frozenset({AlertState.OPEN, AlertState.SNOOZED}),
    "assign": frozenset(UNRESOLVED_STATES),
    "snooze": frozenset(UNRESOLVED_STATES),
    "resolve": frozenset(UNRESOLVED_STATES),
}
# Codes a person may resolve with (`condition_cleared` is the rules' own).
PERSON_RESOLUTION_CODES = [
    c for c in ResolutionCode.values if c != ResolutionCode.CONDITION_CLEARED
]


def _in_scope(organization_id: int):
    """The organization's scope, entered unless it is the one in scope already (rules run in
    tasks and consumers that may or may not have entered it)."""
    scope = get_scope()
    if getattr(scope, "pk", None) == organization_id:
        return nullcontext()
    return organization_scope(Organization.objects.get(pk=organization_id))


def _emit(alert: Alert, type_name: str) -> None:
    emit(
        make_event(
            type_name,
            organization_id=alert.organization_id,
            carrier_id=alert.carrier_id,
            aggregate_id=alert.pk,
            payload=alert_data(alert),
        )
    )


def _transition(alert: Alert, from_state: str, *, actor: str, at: datetime, **details) -> None:
    AlertTransition.objects.create(
        organization_id=alert.organization_id,
        alert=alert,
        from_state=from_state,
        to_state=alert.state,
        actor=actor,
        at=at,
        details=details,
    )


def _unresolved(kind: str, subject_type: str, subject_id) -> Alert | None:
    return (
        Alert.objects.select_for_update()
        .filter(
            kind=kind,
            subject_type=subject_type,
            subject_id=str(subject_id),
            state__in=UNRESOLVED_STATES,
        )
        .first()
    )


def _awake_state(alert: Alert) -> str:
    """Where a snoozed alert returns: to how far people had taken it before the snooze."""
    if alert.assigned_to_id is not None:
        return AlertState.ASSIGNED
    if alert.acknowledged_at is not None:
        return AlertState.ACKNOWLEDGED
    return AlertState.OPEN


def _validate_raise(kind: str, subject_type: str, severity: str) -> None:
    if kind not in AlertKind.values:
        raise InvalidInput.on("kind", f"Unknown alert kind {kind!r}.")
    if subject_type not in SubjectType.values:
        raise InvalidInput.on("subject_type", f"Unknown subject type {subject_type!r}.")
    if severity not in Severity.values:
        raise InvalidInput.on("severity", f"Unknown severity {severity!r}.")


def alert_raise(
    *,
    organization_id: int,
    kind: str,
    subject_type: str,
    subject_id,
    severity: str,
    started_at: datetime,
    title: str,
    detail: dict | None = None,
    route=None,
    stop=None,
    vehicle=None,
    shipment=None,
    carrier_id: int | None = None,
    actor: str | None = None,
) -> Alert:
    """Raise the alert for (kind, subject), or refresh the unresolved one: `last_seen_at`,
    title and detail are updated, severity only goes up, a snoozed alert stays snoozed until
    `snoozed_until` and then wakes. Never a second unresolved alert (the partial unique
    constraint backs this against two sweeps racing)."""
    _validate_raise(kind, subject_type, severity)
    actor = actor or f"rule {kind}"
    subject_id = str(subject_id)
    with _in_scope(organization_id):
        for _attempt in range(2):
            try:
                with transaction.atomic():
                    existing = _unresolved(kind, subject_type, subject_id)
                    if existing is not None:
                        return _refresh(existing, severity, title, detail, actor)
                    return _create(
                        organization_id=organization_id,
                        kind=kind,
                        subject_type=subject_type,
                        subject_id=subject_id,
                        severity=severity,
                        started_at=started_at,
                        title=title,
                        detail=detail,
                        route=route,
                        stop=stop,
                        vehicle=vehicle,
                        shipment=shipment,
                        carrier_id=carrier_id,
                        actor=actor,
                    )
            except IntegrityError as error:
                # Another process created it between our read and our insert: refresh that one.
                if _attempt or UNIQUE_UNRESOLVED not in str(error):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def _create(*, organization_id, actor, detail, **fields) -> Alert:
    now = timezone.now()
    alert = Alert(
        organization_id=organization_id,
        detail=detail or {},
        raised_at=now,
        last_seen_at=now,
        state=AlertState.OPEN,
        **fields,
    )
    alert.save()
    _transition(alert, "", actor=actor, at=now, severity=alert.severity)
    _emit(alert, alert_events.ALERT_RAISED)
    return alert


def _refresh(alert: Alert, severity: str, title: str, detail, actor: str) -> Alert:
    now = timezone.now()
    changed = []
    alert.last_seen_at = now
    if severity_rank(severity) > severity_rank(alert.severity):
        _transition(
            alert,
            alert.state,
            actor=actor,
            at=now,
            severity=severity,
            previous_severity=alert.severity,
        )
        alert.severity = severity
        changed.append("severity")
    if title != alert.title:
        alert.title = title
        changed.append("title")
    if detail is not None and detail != alert.detail:
        alert.detail = detail
        changed.append("detail")
    if alert.state == AlertState.SNOOZED and alert.snoozed_until and alert.snoozed_until <= now:
        _wake(alert, now)
        changed.append("state")
    alert.save()
    # A detail that moves with every sweep (a distance, a position) is kept on the row but is
    # no news: only what a dispatcher acts on (severity, title, waking up) is an event.
    if set(changed) - {"detail"}:
        _emit(alert, alert_events.ALERT_UPDATED)
    return alert


def _wake(alert: Alert, now: datetime) -> None:
    alert.state = _awake_state(alert)
    alert.snoozed_until = None
    _transition(alert, AlertState.SNOOZED, actor=SYSTEM, at=now, reason="snooze ended")


def alert_clear(
    *, organization_id: int, kind: str, subject_type: str, subject_id, reason: str
) -> Alert | None:
    """The condition ended: auto-resolve the unresolved alert for (kind, subject), if any."""
    with _in_scope(organization_id), transaction.atomic():
        alert = _unresolved(kind, subject_type, subject_id)
        if alert is None:
            return None
        now = timezone.now()
        from_state = alert.state
        alert.state = AlertState.RESOLVED
        alert.resolved_at = now
        alert.resolution_code = ResolutionCode.CONDITION_CLEARED
        alert.resolution_note = reason
        alert.auto_resolved = True
        alert.snoozed_until = None
        alert.save()
        _transition(alert, from_state, actor=f"rule {kind}", at=now, reason=reason)
        _emit(alert, alert_events.ALERT_RESOLVED)
        return alert


# ---------------------------------------------------------------------------------------------
# People working an alert (the API)
# ---------------------------------------------------------------------------------------------


def _locked(actor: Actor, alert_id) -> Alert:
    """The alert, locked, if this actor may see it (carrier users: their carrier's only)."""
    queryset = visible_to(actor, Alert.objects.select_for_update(of=("self",)))
    alert = queryset.filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("No such alert.")
    return alert


def _check_from(alert: Alert, action: str) -> None:
    if alert.state not in ALLOWED_FROM[action]:
        raise IllegalTransition(
            f"Cannot {action} an alert that is {alert.state}.",
            fields={"state": [alert.state]},
        )


def alert_acknowledge(*, actor: Actor, alert_id, note: str = "") -> Alert:
    with transaction.atomic():
        alert = _locked(actor, alert_id)
        if alert.state == AlertState.ACKNOWLEDGED:
            raise IllegalTransition("This alert is already acknowledged.")
        _check_from(alert, "acknowledge")
        now = timezone.now()
        from_state = alert.state
        # From a snooze, an alert someone holds stays assigned; anything else is acknowledged.
        held = from_state == AlertState.SNOOZED and alert.assigned_to_id is not None
        alert.state = AlertState.ASSIGNED if held else AlertState.ACKNOWLEDGED
        alert.acknowledged_by = actor.user
        alert.acknowledged_at = now
        alert.snoozed_until = None
        alert.save()
        _transition(alert, from_state, actor=actor.label, at=now, note=note)
        _emit(alert, alert_events.ALERT_ACKNOWLEDGED)
        return alert


def may_work_alerts(membership: Membership, alert: Alert) -> bool:
    """A member who may be handed this alert: their role writes alerts, and a carrier user
    only their own carrier's."""
    if not role_allows(membership.role, Resource.ALERTS, WRITE):
        return False
    if membership.carrier_id is not None:
        return alert.carrier_id == membership.carrier_id
    return True


def alert_assign(*, actor: Actor, alert_id, assignee_id, note: str = "") -> Alert:
    with transaction.atomic():
        alert = _locked(actor, alert_id)
        _check_from(alert, "assign")
        membership = (
            Membership.objects.filter(organization_id=alert.organization_id, user_id=assignee_id)
            .select_related("user")
            .first()
        )
        if membership is None or not may_work_alerts(membership, alert):
            raise InvalidInput.on(
                "assignee", "This person is not a member who may work this alert."
            )
        if alert.assigned_to_id == membership.user_id and alert.state == AlertState.ASSIGNED:
            raise IllegalTransition("This alert is already assigned to this person.")
        now = timezone.now()
        from_state = alert.state
        previous = alert.assigned_to_id
        alert.state = AlertState.ASSIGNED
        alert.assigned_to = membership.user
        alert.assigned_at = now
        alert.snoozed_until = None
        if alert.acknowledged_at is None:
            # Handing an alert to someone is acknowledging that it is being dealt with.
            alert.acknowledged_by = actor.user
            alert.acknowledged_at = now
        alert.save()
        _transition(
            alert,
            from_state,
            actor=actor.label,
            at=now,
            assignee=membership.user_id,
            previous_assignee=previous,
            note=note,
        )
        _emit(alert, alert_events.ALERT_ASSIGNED)
        return alert


def alert_snooze(*, actor: Actor, alert_id, until: datetime, note: str = "") -> Alert:
    with transaction.atomic():
        # The alert first: someone who cannot see it learns nothing from the body's checks.
        alert = _locked(actor, alert_id)
        now = timezone.now()
        if until is None or until <= now:
            raise InvalidInput.on("until", "Snooze until a time in the future.")
        if until - now > MAX_SNOOZE:
            raise InvalidInput.on("until", "Snooze for at most 7 days.")
        _check_from(alert, "snooze")
        from_state = alert.state
        alert.state = AlertState.SNOOZED
        alert.snoozed_until = until
        alert.save()
        _transition(
            alert, from_state, actor=actor.label, at=now, until=until.isoformat(), note=note
        )
        _emit(alert, alert_events.ALERT_SNOOZED)
        return alert


def alert_resolve(*, actor: Actor, alert_id, resolution_code: str, note: str = "") -> Alert:
    with transaction.atomic():
        alert = _locked(actor, alert_id)
        if resolution_code not in PERSON_RESOLUTION_CODES:
            raise InvalidInput.on(
                "resolution_code", f"Choose one of: {', '.join(PERSON_RESOLUTION_CODES)}."
            )
        if alert.state == AlertState.RESOLVED:
            raise IllegalTransition("This alert is already resolved.")
        now = timezone.now()
        from_state = alert.state
        alert.state = AlertState.RESOLVED
        alert.resolved_at = now
        alert.resolved_by = actor.user
        alert.resolution_code = resolution_code
        alert.resolution_note = note
        alert.auto_resolved = False
        alert.snoozed_until = None
        alert.save()
        _transition(alert, from_state, actor=actor.label, at=now, resolution_code=resolution_code)
        _emit(alert, alert_events.ALERT_RESOLVED)
        return alert


# ---------------------------------------------------------------------------------------------
# Escalation (scheduled by the sweep)
# ---------------------------------------------------------------------------------------------


def _escalate_organization(organization: Organization, now: datetime) -> int:
    escalated = 0
    with organization_scope(organization):
        # Snoozes that ended wake first, so an alert nobody picked up after its snooze escalates.
        for alert in Alert.objects.filter(
            state=AlertState.SNOOZED, snoozed_until__lte=now
        ).values_list("pk", flat=True):
            with transaction.atomic():
                locked = _unresolved_by_pk(alert)
                if locked is not None and locked.state == AlertState.SNOOZED:
                    _wake(locked, now)
                    locked.save()
                    _emit(locked, alert_events.ALERT_UPDATED)
        candidates = Alert.objects.filter(state=AlertState.OPEN).values_list(
            "pk", "carrier_id", "raised_at", "escalated_at"
        )
        for pk, carrier_id, raised_at, escalated_at in candidates:
            after = timedelta(
                minutes=thresholds_for(organization.pk, carrier_id).escalate_after_min
            )
            if (escalated_at or raised_at) + after > now:
                continue
            with transaction.atomic():
                alert = _unresolved_by_pk(pk)
                if alert is None or alert.state != AlertState.OPEN:
                    continue  # acknowledged or resolved meanwhile
                previous = alert.severity
                rank = min(severity_rank(previous) + 1, len(SEVERITY_ORDER) - 1)
                alert.severity = SEVERITY_ORDER[rank]
                alert.escalation_level += 1
                alert.escalated_at = now
                alert.save()
                _transition(
                    alert,
                    alert.state,
                    actor=SYSTEM,
                    at=now,
                    escalation_level=alert.escalation_level,
                    severity=alert.severity,
                    previous_severity=previous,
                )
                _emit(alert, alert_events.ALERT_ESCALATED)
                escalated += 1
    return escalated


def _unresolved_by_pk(pk) -> Alert | None:
    return Alert.objects.select_for_update().filter(pk=pk, state__in=UNRESOLVED_STATES).first()


def alerts_escalate(now: datetime | None = None, *, organization_id: int | None = None) -> int:
    """Alerts still open (nobody acknowledged them) `escalate_after_min` after they were raised
    or last escalated go up one severity step (at most critical; the level keeps counting) and
    emit `alert.escalated`. Ended snoozes wake. Returns how many alerts escalated."""
    now = now or timezone.now()
    organizations = Organization.objects.filter(is_active=True)
    if organization_id is not None:
        organizations = organizations.filter(pk=organization_id)
    return sum(_escalate_organization(org, now) for org in organizations)


__all__ = [
    "alert_acknowledge",
    "alert_assign",
    "alert_clear",
    "alert_raise",
    "alert_resolve",
    "alert_snooze",
    "alerts_escalate",
    "may_work_alerts",
]
