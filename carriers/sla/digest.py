"""The weekly scorecard e-mail (docs/REPORTS_API.md "Weekly e-mail").

Every 15 minutes a beat task looks for active `ScorecardEmail`s whose weekday and hour (in the
organization's time zone) have come and that were not sent since: each is claimed atomically
(a conditional UPDATE of `last_sent_at`), so two beats, two workers or the command running
beside the beat send it once. Each recipient gets the scorecard of the last `period_days`
complete days as *they* may see it (their actor: a carrier user only their carrier), in HTML
and text, breaches in words as well as colour, the trend against the previous period, a link
to /reports/ with the same filters, and the Excel file attached.

Sending goes through the notifications app's e-mail channel (notifications/channels/email.py):
its message builder (From, Reply-To, Auto-Submitted, Message-ID from an idempotency key) and
its connection handling (one SMTP session per batch, timeouts). `send_email` there takes no
attachment, so this module builds the channel's message with `email_message`, attaches the
workbook and sends it on the channel's connection.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.utils import formataddr

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from carriers.models import Carrier
from carriers.sla import exports, selectors
from carriers.sla.metrics import METRICS, SCORECARD_COLUMNS, Unit
from carriers.sla.models import ScorecardEmail
from carriers.sla.query import query_string, report_query
from carriers.sla.types import MetricValue, Scorecard, ScorecardRow
from control_tower.models import Membership, Organization
from control_tower.tenancy.actors import Actor, actor_for_membership
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.roles import READ, Resource
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from notifications.channels.base import OutgoingEmail
from notifications.channels.email import email_message, message_id, open_connection

logger = logging.getLogger(__name__)


@dataclass
class SendOutcome:
    sent: int = 0
    skipped: int = 0  # recipients with no e-mail address or nothing they may see
    failed: int = 0
    schedules: int = 0

    def add(self, other: SendOutcome) -> None:
        self.sent += other.sent
        self.skipped += other.skipped
        self.failed += other.failed
        self.schedules += other.schedules


@dataclass(frozen=True)
class RenderedScorecard:
    subject: str
    text: str
    html: str
    attachment_name: str
    attachment: bytes


# --- when ------------------------------------------------------------------------------------


def last_slot(*, schedule: ScorecardEmail, now: datetime) -> datetime:
    """The latest moment at or before `now` when `schedule` was due (its weekday and hour in
    the organization's time zone)."""
    zone = schedule.organization.zone
    local = timezone.localtime(now, zone)
    day = local.date() - timedelta(days=(local.weekday() - schedule.weekday) % 7)
    slot = datetime.combine(day, time(schedule.hour), tzinfo=zone)
    if slot > now:
        slot = datetime.combine(day - timedelta(days=7), time(schedule.hour), tzinfo=zone)
    return slot


def is_due(*, schedule: ScorecardEmail, now: datetime) -> bool:
    """Due when this week's slot has come and nothing was sent since. A schedule created after
    this week's slot waits for next week's (no surprise e-mail on saving it)."""
    if not schedule.is_active:
        return False
    slot = last_slot(schedule=schedule, now=now)
    if schedule.last_sent_at is not None:
        return schedule.last_sent_at < slot
    return schedule.created_at <= slot


def report_period(*, period_days: int, sending_day: date) -> tuple[date, date]:
    """The last `period_days` complete service days before `sending_day`."""
    date_to = sending_day - timedelta(days=1)
    return date_to - timedelta(days=period_days - 1), date_to


# --- sending ---------------------------------------------------------------------------------


def scorecard_emails_send_due(
    *, now: datetime | None = None, organization_slug: str | None = None, force: bool = False
) -> SendOutcome:
    """Send every due scheduled e-mail (all active ones with `force`), of one organization or
    all. Each schedule is claimed first (`last_sent_at` moved by a conditional UPDATE), so a
    concurrent run skips it; a schedule whose mail server could not be reached is released
    for the next run. Returns the counts."""
    now = now or timezone.now()
    with dangerously_all_organizations():  # which organizations have schedules at all
        ids = set(
            ScorecardEmail.objects.filter(is_active=True).values_list("organization_id", flat=True)
        )
    organizations = Organization.objects.filter(pk__in=ids, is_active=True)
    if organization_slug:
        organizations = organizations.filter(slug=organization_slug)
    total = SendOutcome()
    for organization in organizations.order_by("pk"):
        with organization_scope(organization):
            for schedule in ScorecardEmail.objects.filter(is_active=True).order_by("pk"):
                schedule.organization = organization
                if not force and not is_due(schedule=schedule, now=now):
                    continue
                slot = now if force else last_slot(schedule=schedule, now=now)
                previous = schedule.last_sent_at
                if not _claim(schedule, slot=slot, now=now):
                    continue  # another run took it
                outcome = _send(schedule=schedule, now=now, sending_day=_local_day(schedule, slot))
                if outcome.sent == 0 and outcome.failed:
                    _release(schedule, claimed_at=now, previous=previous)
                total.add(outcome)
    return total


def scorecard_email_send(*, schedule: ScorecardEmail, now: datetime | None = None) -> SendOutcome:
    """Send `schedule` now (the API's send-now and the admin action), whatever its weekday,
    covering the `period_days` complete days before today. Records `last_sent_at`."""
    now = now or timezone.now()
    outcome = _send(schedule=schedule, now=now, sending_day=_local_day(schedule, now))
    if outcome.sent:
        ScorecardEmail.objects.filter(pk=schedule.pk).update(last_sent_at=now)
        schedule.last_sent_at = now
    return outcome


def _local_day(schedule: ScorecardEmail, moment: datetime) -> date:
    return timezone.localtime(moment, schedule.organization.zone).date()


def _claim(schedule: ScorecardEmail, *, slot: datetime, now: datetime) -> bool:
    not_sent_since = Q(last_sent_at__isnull=True) | Q(last_sent_at__lt=slot)
    claimed = ScorecardEmail.objects.filter(not_sent_since, pk=schedule.pk).update(last_sent_at=now)
    return claimed == 1


def _release(schedule: ScorecardEmail, *, claimed_at: datetime, previous: datetime | None):
    ScorecardEmail.objects.filter(pk=schedule.pk, last_sent_at=claimed_at).update(
        last_sent_at=previous
    )


def _send(*, schedule: ScorecardEmail, now: datetime, sending_day: date) -> SendOutcome:
    outcome = SendOutcome(schedules=1)
    date_from, date_to = report_period(period_days=schedule.period_days, sending_day=sending_day)
    carrier_ids = list(schedule.carriers.values_list("pk", flat=True))
    recipients = list(schedule.recipients.select_related("user", "organization").order_by("pk"))
    messages = []
    for membership in recipients:
        rendered = render_for(
            schedule=schedule,
            membership=membership,
            date_from=date_from,
            date_to=date_to,
            carrier_ids=carrier_ids,
        )
        if rendered is None:
            outcome.skipped += 1
            continue
        messages.append((membership, rendered))
    if not messages:
        return outcome
    organization = schedule.organization
    try:
        with open_connection() as connection:
            for membership, rendered in messages:
                key = f"scorecard-{schedule.pk}-{date_to.isoformat()}-{membership.pk}"
                outgoing = OutgoingEmail(
                    to=membership.user.email,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    from_email=formataddr((organization.name, settings.DEFAULT_FROM_EMAIL)),
                    idempotency_key=key,
                    reply_to=(organization.support_email,) if organization.support_email else (),
                )
                email = email_message(outgoing, message_id(key), connection)
                email.attach(
                    rendered.attachment_name, rendered.attachment, exports.XLSX_CONTENT_TYPE
                )
                try:
                    email.send(fail_silently=False)
                except (smtplib.SMTPException, OSError) as exc:
                    logger.warning(
                        "scorecard e-mail %s to membership %s failed: %s",
                        schedule.pk,
                        membership.pk,
                        exc,
                    )
                    outcome.failed += 1
                else:
                    outcome.sent += 1
    except Exception as exc:  # noqa: BLE001 - the channel raises its own error classes
        logger.warning("scorecard e-mail %s: mail server unreachable: %s", schedule.pk, exc)
        outcome.failed += len(messages) - outcome.sent - outcome.failed
    return outcome


# --- rendering -------------------------------------------------------------------------------


def render_for(
    *,
    schedule: ScorecardEmail,
    membership: Membership,
    date_from: date,
    date_to: date,
    carrier_ids: list[int],
) -> RenderedScorecard | None:
    """The e-mail one member gets, or None when they have no address or may see nothing (no
    reports permission, or none of the chosen carriers is theirs)."""
    if not membership.user.email:
        return None
    actor = actor_for_membership(membership)
    if not actor.can(Resource.REPORTS, READ):
        return None
    params: dict[str, list[str] | str] = {"from": date_from.isoformat(), "to": date_to.isoformat()}
    if carrier_ids:
        mine = list(
            visible_to(actor, Carrier).filter(pk__in=carrier_ids).values_list("pk", flat=True)
        )
        if not mine:
            return None
        params["carrier"] = [str(pk) for pk in mine]
    query = report_query(actor=actor, params=params)
    card = selectors.scorecard(actor=actor, filters=query.filters, group="carrier", compare=True)
    return render_scorecard(
        card=card, actor=actor, title=schedule.name, link_query=query_string(query)
    )


def render_scorecard(
    *, card: Scorecard, actor: Actor, title: str, link_query: str
) -> RenderedScorecard:
    """Subject, text, HTML and the XLSX of one scorecard (also usable for a preview)."""
    rows = [_row_context(row) for row in card.rows]
    total = _row_context(card.total)
    breaches = sum(row["breaches"] for row in rows) if rows else total["breaches"]
    period = f"{card.filters.date_from.isoformat()} to {card.filters.date_to.isoformat()}"
    subject = f"{title}: {period}"
    if breaches:
        subject += f" ({breaches} breach{'es' if breaches != 1 else ''})"
    previous = card.previous_filters
    context = {
        "title": title,
        "organization": actor.organization,
        "period": period,
        "previous_period": (
            f"{previous.date_from.isoformat()} to {previous.date_to.isoformat()}"
            if previous
            else None
        ),
        "columns": [METRICS[key] for key in SCORECARD_COLUMNS],
        "rows": rows,
        "total": total,
        "breaches": breaches,
        "link": f"{settings.PUBLIC_BASE_URL}/reports/?{link_query}",
    }
    table = exports.scorecard_table(card)
    return RenderedScorecard(
        subject=subject,
        text=render_to_string("sla/scorecard_email.txt", context),
        html=render_to_string("sla/scorecard_email.html", context),
        attachment_name=table.filename("xlsx", card.filters),
        attachment=exports.to_xlsx(table),
    )


def _row_context(row: ScorecardRow) -> dict:
    cells = []
    for key in SCORECARD_COLUMNS:
        metric = METRICS[key]
        value = row.metrics.get(key) or MetricValue(key=key, value=None)
        cells.append(
            {
                "label": metric.label,
                "value": format_value(value.value, metric.unit),
                "status": value.status,
                "status_word": {"pass": "pass", "breach": "BREACH"}.get(value.status or "", ""),
                "target": format_value(value.target, metric.unit),
                "trend": trend_text(value, metric),
            }
        )
    return {
        "label": row.label,
        "cells": cells,
        "breaches": sum(1 for cell in cells if cell["status"] == "breach"),
    }


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == Unit.PCT:
        return f"{value:.1f}%"
    if unit == Unit.MIN:
        return f"{value:.1f} min"
    if unit == Unit.STARS:
        return f"{value:.2f}"
    if unit == Unit.KM:
        return f"{value:.2f} km"
    if unit == Unit.COUNT:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def trend_text(value: MetricValue, metric) -> str:
    """The change against the previous period in words ("up 2.1 pts, better"), not just an
    arrow or a colour."""
    if value.delta is None or value.value is None or value.previous is None:
        return ""
    if abs(value.delta) < 1e-9:
        return "unchanged"
    direction = "up" if value.delta > 0 else "down"
    size = abs(value.delta)
    amount = f"{size:.1f} pts" if metric.unit == Unit.PCT else format_value(size, metric.unit)
    if metric.higher_is_better is None:
        return f"{direction} {amount}"
    better = (value.delta > 0) == metric.higher_is_better
    return f"{direction} {amount}, {'better' if better else 'worse'}"


# --- beat ------------------------------------------------------------------------------------


@shared_task(name="sla.send_scorecard_emails", ignore_result=True)
def send_scorecard_emails() -> int:
    """Beat, every 15 minutes: send the due weekly scorecard e-mails (idempotent)."""
    return scorecard_emails_send_due().sent
