"""The rules people expect, in one place: consent and opt-out, quiet hours in the recipient's
time zone, staleness, the per-recipient rate limit, and the deduplication key.

Each rule is a small function; `admission` applies them in order when a message is created and
`still_sendable` re-checks the ones that can change while it waits (opt-out, staleness).
A message a rule stops is kept as `suppressed` with its reason, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from notifications.models import (
    Audience,
    Channel,
    ContactPreference,
    Notification,
    PreferenceState,
    Status,
    SuppressionReason,
)

# Messages that count toward a recipient's rate limit: everything not suppressed or failed.
COUNTED_STATUSES = (
    Status.QUEUED,
    Status.HELD,
    Status.SENDING,
    Status.SENT,
    Status.DELIVERED,
)


@dataclass(frozen=True)
class Admission:
    status: str  # queued, held or suppressed
    reason: str = ""
    send_after: datetime | None = None


def dedup_key(*, subject: str, trigger: str, occasion: str, channel: str, address: str = "") -> str:
    """One message per (subject, trigger, occasion, channel[, address]): a re-delivered event
    or two events for the same occasion make the same key, and the unique constraint keeps
    one row. `subject` is "s<shipment id>" or "a<alert id>"; the address is part of the key
    for staff messages (one per person)."""
    key = f"{subject}:{trigger}:{occasion}:{channel}"
    return f"{key}:{address}"[:200] if address else key[:200]


def preference_state(organization_id: int, channel: str, address: str) -> str | None:
    return (
        ContactPreference.dangerously_unscoped.filter(
            organization_id=organization_id, channel=channel, address=address
        )
        .values_list("state", flat=True)
        .first()
    )


def consent_problem(settings, *, channel: str, address: str) -> str:
    """'' when the recipient may be contacted on this channel, else the reason."""
    state = preference_state(settings.organization_id, channel, address)
    if state == PreferenceState.OPTED_OUT:
        return SuppressionReason.OPTED_OUT
    requires = (
        settings.email_requires_opt_in if channel == Channel.EMAIL else settings.sms_requires_opt_in
    )
    if requires and state != PreferenceState.OPTED_IN:
        return SuppressionReason.NO_CONSENT
    return ""


def quiet_hours_end(settings, *, zone: ZoneInfo, at: datetime) -> datetime | None:
    """When the quiet hours around `at` end (an aware datetime), or None when `at` is outside
    them. Quiet hours may wrap midnight (21:00–08:00) or not (13:00–15:00)."""
    start, end = settings.quiet_hours_start, settings.quiet_hours_end
    if start == end:
        return None  # no quiet hours
    local = at.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    wraps = start > end
    inside = (clock >= start or clock < end) if wraps else (start <= clock < end)
    if not inside:
        return None
    end_day = local.date()
    if wraps and clock >= start:
        end_day += timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone)


def rate_limited(settings, *, channel: str, address: str, now: datetime) -> bool:
    """Whether the recipient already has `rate_limit_per_hour` messages in the last hour or
    `rate_limit_per_day` in the last day (counted in the database: a message over the limit
    is kept as suppressed, so nothing is lost without a trace)."""
    recent = Notification.dangerously_unscoped.filter(
        organization_id=settings.organization_id,
        channel=channel,
        address=address,
        status__in=COUNTED_STATUSES,
    )
    day = recent.filter(created_at__gt=now - timedelta(days=1))
    if day.count() >= settings.rate_limit_per_day:
        return True
    return day.filter(created_at__gt=now - timedelta(hours=1)).count() >= (
        settings.rate_limit_per_hour
    )


def admission(
    settings,
    *,
    audience: str,
    channel: str,
    address: str,
    zone: ZoneInfo,
    now: datetime,
    send_after: datetime,
    expires_at: datetime | None,
) -> Admission:
    """What happens to a new message: suppressed (with the reason), held until a time
    (quiet hours or a scheduled send), or queued now. Order: stale, consent, rate limit,
    quiet hours. Staff messages skip consent defaults, the rate limit and quiet hours (an
    escalated alert is work, not marketing), but an opt-out still holds."""
    if expires_at is not None and now > expires_at:
        return Admission(Status.SUPPRESSED, SuppressionReason.STALE)
    problem = consent_problem(settings, channel=channel, address=address)
    if audience == Audience.STAFF:
        if problem == SuppressionReason.OPTED_OUT:
            return Admission(Status.SUPPRESSED, problem)
        return Admission(Status.QUEUED, send_after=send_after)
    if problem:
        return Admission(Status.SUPPRESSED, problem)
    if rate_limited(settings, channel=channel, address=address, now=now):
        return Admission(Status.SUPPRESSED, SuppressionReason.RATE_LIMITED)
    quiet_end = quiet_hours_end(settings, zone=zone, at=max(send_after, now))
    if quiet_end is not None:
        if expires_at is not None and quiet_end > expires_at:
            return Admission(Status.SUPPRESSED, SuppressionReason.QUIET_HOURS_EXPIRED)
        return Admission(Status.HELD, send_after=quiet_end)
    if send_after > now:
        return Admission(Status.HELD, send_after=send_after)
    return Admission(Status.QUEUED, send_after=send_after)


def still_sendable(settings, message: Notification, *, now: datetime) -> str:
    """'' when a claimed message may go now, else the reason to suppress it (the recipient
    opted out meanwhile, or it waited past its expiry)."""
    if message.expires_at is not None and now > message.expires_at:
        return (
            SuppressionReason.QUIET_HOURS_EXPIRED
            if message.status == Status.HELD
            else SuppressionReason.STALE
        )
    problem = consent_problem(settings, channel=message.channel, address=message.address)
    if problem == SuppressionReason.OPTED_OUT or (
        problem and message.audience == Audience.CUSTOMER
    ):
        return problem
    return ""
