"""Sending a message, retrying it, picking up due ones, and recording provider reports.

At least once: a message is claimed (queued/held -> sending, `SELECT … FOR UPDATE SKIP
LOCKED`, with a lease), sent outside any transaction, and its result recorded only if it is
still the claim's. A worker that dies mid-send leaves a lease that expires; `dispatch_due`
puts the message back in the queue and it is sent again with the same idempotency key (the
e-mail's Message-ID, the SMS provider's idempotency key), so receivers can tell.
"""

from __future__ import annotations

import logging
import random
import time
from contextlib import ExitStack
from datetime import timedelta
from email.utils import formataddr
from functools import cached_property

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.template import TemplateSyntaxError
from django.utils import timezone

from control_tower.errors import TenantScopeMissing
from control_tower.models import Organization
from control_tower.tenancy.scope import get_scope
from notifications.channels.base import (
    ChannelError,
    OutgoingEmail,
    OutgoingSms,
    PermanentChannelError,
    SendResult,
)
from notifications.channels.email import open_connection, send_email
from notifications.channels.registry import get_sms_backend
from notifications.models import (
    Audience,
    Channel,
    Notification,
    NotificationLog,
    Status,
    SuppressionReason,
)
from notifications.policy import settings_for, trigger_config
from notifications.rendering import redact, render_sources, template_sources, with_sms_footer
from notifications.rules import quiet_hours_end, still_sendable
from notifications.services.messages import log_row, log_status, organization_zone
from notifications.unsubscribe import unsubscribe_url
from tracking.services.tracking_links import notification_link_url

logger = logging.getLogger(__name__)


def _setting(name: str, default):
    return getattr(settings, name, default)


def retry_delay_s(attempts: int) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, base × 2^(attempts-1)))."""
    base = _setting("NOTIFICATIONS_RETRY_BASE_S", 30)
    cap = _setting("NOTIFICATIONS_RETRY_MAX_S", 3600)
    return random.uniform(0, min(cap, base * 2 ** max(attempts - 1, 0)))  # noqa: S311


def due(now) -> Q:
    return (
        Q(status__in=[Status.QUEUED, Status.HELD])
        & Q(send_after__lte=now)
        & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    )


def _suppress(message: Notification, reason: str) -> None:
    message.status, message.reason = Status.SUPPRESSED, reason
    message.save(update_fields=["status", "reason", "updated_at"])
    log_status(message, Status.SUPPRESSED, reason)


class _Batch:
    """What every message of one organization's batch shares, read once per batch rather
    than once per message: the settings row, its zone, trigger configurations, templates."""

    def __init__(self, organization) -> None:
        self.organization = organization
        self._configs: dict[str, object] = {}
        self._sources: dict[tuple[str, str, str], dict[str, str]] = {}

    @cached_property
    def options(self):
        return settings_for(self.organization)

    def config(self, trigger: str):
        if trigger not in self._configs:
            self._configs[trigger] = trigger_config(self.organization.pk, trigger)
        return self._configs[trigger]

    def sources(self, trigger: str, channel: str, language: str) -> dict[str, str]:
        key = (trigger, channel, language)
        if key not in self._sources:
            self._sources[key] = template_sources(self.organization.pk, *key)
        return self._sources[key]


def _claim(notification_ids: list[int], batch: _Batch, now) -> list[Notification]:
    """The due messages among `notification_ids`, now `sending` under one lease, in id order
    (none that is not due, gone, held by another worker, or that a rule stopped: those are
    suppressed or held as a lone message would be). One transaction, one UPDATE."""
    with transaction.atomic():
        candidates = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("shipment")
            .filter(due(now), pk__in=notification_ids)
            .order_by("id")
        )
        claimed = []
        for message in candidates:
            message.organization = batch.organization
            if message.shipment is not None:
                message.shipment.organization = batch.organization
            if not batch.config(message.trigger).enabled:
                _suppress(message, SuppressionReason.DISABLED)
                continue
            reason = still_sendable(batch.options, message, now=now)
            if reason:
                _suppress(message, reason)
                continue
            if message.audience == Audience.CUSTOMER and _held_for_quiet_hours(
                message, batch.options, now
            ):
                continue
            claimed.append(message)
        if not claimed:
            return []
        lease_until = now + timedelta(seconds=_lease_s())
        Notification.objects.filter(pk__in=[m.pk for m in claimed]).update(
            status=Status.SENDING,
            attempts=F("attempts") + 1,
            lease_until=lease_until,
            updated_at=now,
        )
        for message in claimed:
            message.status, message.lease_until = Status.SENDING, lease_until
            message.attempts += 1
        NotificationLog.dangerously_unscoped.bulk_create(
            [log_row(m, Status.SENDING, f"attempt {m.attempts}") for m in claimed]
        )
        return claimed


def _lease_s() -> float:
    return _setting("NOTIFICATIONS_LEASE_S", 120)


def _held_for_quiet_hours(message: Notification, options, now) -> bool:
    """A retry (or a late task) that falls in quiet hours waits for their end like a new
    message would, or is dropped if it would expire first. True when it no longer goes now."""
    end = quiet_hours_end(options, zone=organization_zone(message.organization), at=now)
    if end is None:
        return False
    if message.expires_at is not None and end > message.expires_at:
        _suppress(message, SuppressionReason.QUIET_HOURS_EXPIRED)
        return True
    message.status, message.send_after, message.next_attempt_at = Status.HELD, end, None
    message.save(update_fields=["status", "send_after", "next_attempt_at", "updated_at"])
    log_status(message, Status.HELD, f"quiet hours: until {end.isoformat()}")
    return True


def _first_sms_to(message: Notification) -> bool:
    return not Notification.objects.filter(
        channel=Channel.SMS,
        address=message.address,
        status__in=[Status.SENT, Status.DELIVERED],
    ).exists()


def build_outgoing(
    message: Notification, batch: _Batch | None = None
) -> tuple[OutgoingEmail | OutgoingSms, str]:
    """The message for the channel, rendered now (the tracking link is derived at send time
    and never stored), and its preview text with the link redacted."""
    organization = message.organization
    batch = batch or _Batch(organization)
    context = dict(message.context)
    secret = ""
    if message.shipment is not None:
        secret = notification_link_url(message.shipment)
        context["tracking_url"] = secret
    if message.channel == Channel.EMAIL and message.audience == Audience.CUSTOMER:
        context["unsubscribe_url"] = unsubscribe_url(
            organization.pk, Channel.EMAIL, message.address
        )
    rendered = render_sources(
        batch.sources(message.trigger, message.channel, message.language),
        channel=message.channel,
        context=context,
    )
    options = batch.options
    key = str(message.idempotency_key)
    if message.channel == Channel.SMS:
        body = rendered.text
        if _first_sms_to(message):
            body = with_sms_footer(body, language=message.language)
        outgoing = OutgoingSms(
            to=message.address,
            body=body,
            sender=options.sms_sender,
            idempotency_key=key,
            status_callback_url=_status_callback_url(key),
        )
        return outgoing, redact(body, secret)
    text = rendered.text
    headers = {}
    if context.get("unsubscribe_url"):
        link = context["unsubscribe_url"]
        text += f"\n\n--\n{_unsubscribe_line(message.language)} {link}\n"
        if link.startswith(("https://", "http://")):  # RFC 8058 needs an absolute URI
            headers = {
                "List-Unsubscribe": f"<{link}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            }
    sender_name = options.sender_name or organization.name
    from_address = options.from_email or settings.DEFAULT_FROM_EMAIL
    reply_to = options.reply_to or organization.support_email
    outgoing = OutgoingEmail(
        to=message.address,
        subject=rendered.subject,
        text=text,
        html=rendered.html,
        from_email=formataddr((sender_name, from_address)),
        idempotency_key=key,
        reply_to=(reply_to,) if reply_to else (),
        headers=headers,
    )
    return outgoing, redact(rendered.text, secret)


def _unsubscribe_line(language: str) -> str:
    return "Para no recibir más correos:" if language == "es" else "To stop these e-mails:"


def _status_callback_url(key: str) -> str:
    base = settings.PUBLIC_BASE_URL
    if not base:
        return ""
    return f"{base}/n/sms/{get_sms_backend().name}/status/{key}/"


def _transmit(outgoing, email_session) -> SendResult:
    if isinstance(outgoing, OutgoingSms):
        return get_sms_backend().send(outgoing)
    return send_email(outgoing, connection=email_session())


def notification_send(*, notification_id: int) -> str:
    """Send one due message (organization in scope). Returns what happened: "sent",
    "delivered", "retry", "failed", or "skipped" (not due, claimed elsewhere, suppressed).
    Side effects: the message's status and a log row per change; the channel's call."""
    return notifications_send(notification_ids=[notification_id]).get(notification_id, "skipped")


def send_size() -> int:
    """How many due messages one send task or dispatch batch takes (NOTIFICATIONS_SEND_BATCH;
    1 sends each message alone)."""
    return max(1, int(_setting("NOTIFICATIONS_SEND_BATCH", 50)))


def notification_send_with_due(*, notification_id: int) -> str:
    """The send task's work: this message and, on the same SMTP session, up to
    `send_size() - 1` other queued messages of its organization that are due now (their own
    tasks, when they run, find them sent and skip). Returns what happened to this one."""
    others = []
    if send_size() > 1:
        others = list(
            Notification.objects.filter(due(timezone.now()), status=Status.QUEUED)
            .exclude(pk=notification_id)
            .order_by("id")
            .values_list("pk", flat=True)[: send_size() - 1]
        )
    outcomes = notifications_send(notification_ids=[notification_id, *others])
    return outcomes.get(notification_id, "skipped")


def notifications_send(*, notification_ids: list[int]) -> dict[int, str]:
    """Send the due messages among `notification_ids` (one organization, in scope) as one
    batch: claimed together, e-mails over one SMTP session (`open_connection`), successes
    recorded with one UPDATE and one log insert. Each message keeps every rule of a lone
    one (re-checks, lease, retries, logs). Returns {id: what happened} for the claimed ones;
    ids not returned were skipped. The batch stops sending at half the lease (a slow
    server must not outlive the claim); the rest goes back to the queue at once."""
    organization = get_scope()
    if not isinstance(organization, Organization):
        raise TenantScopeMissing("notifications_send needs one organization in scope.")
    batch = _Batch(organization)
    started = time.monotonic()
    claimed = _claim(notification_ids, batch, timezone.now())
    outcomes: dict[int, str] = {}
    sent: list[tuple[Notification, SendResult, str, str]] = []
    with ExitStack() as stack:
        email_session = _lazy_email_session(stack)
        for index, message in enumerate(claimed):
            if time.monotonic() - started > _lease_s() / 2:
                _release(claimed[index:])
                break
            try:
                outgoing, preview = build_outgoing(message, batch)
                result = _transmit(outgoing, email_session)
            except TemplateSyntaxError as exc:
                error = PermanentChannelError(f"Template error: {exc}")
                outcomes[message.pk] = _record_failure(message, error)
            except ChannelError as exc:
                outcomes[message.pk] = _record_failure(message, exc)
            except Exception as exc:  # noqa: BLE001 - an unexpected error is retried, then fails
                logger.exception("sending notification %s failed", message.pk)
                error = ChannelError(f"{type(exc).__name__}: {exc}")
                outcomes[message.pk] = _record_failure(message, error)
            else:
                sent.append((message, result, getattr(outgoing, "subject", ""), preview))
    outcomes.update(_record_successes(sent))
    return outcomes


def _lazy_email_session(stack: ExitStack):
    """A function giving the batch's SMTP connection, opened on the first e-mail (a batch of
    SMS opens none); if it cannot be opened, each e-mail fails with that error."""
    session: list = []

    def get():
        if not session:
            session.append(stack.enter_context(open_connection()))
        return session[0]

    return get


def _release(messages: list[Notification]) -> None:
    """Claimed messages the batch had no time for: queued again at once, the attempt not
    counted (nothing was sent)."""
    now = timezone.now()
    with transaction.atomic():
        for message in messages:
            updated = _still_ours(message).update(
                status=Status.QUEUED,
                attempts=message.attempts - 1,
                lease_until=None,
                next_attempt_at=now,
                updated_at=now,
            )
            if updated:
                log_status(message, Status.QUEUED, "batch out of time: re-queued")


def _still_ours(message: Notification):
    return Notification.objects.select_for_update().filter(
        pk=message.pk, status=Status.SENDING, attempts=message.attempts
    )


def _record_successes(sent: list[tuple[Notification, SendResult, str, str]]) -> dict[int, str]:
    """Record the batch's sent messages that are still its claim's (a lease that expired
    meanwhile gave the message to another attempt): one UPDATE, one log insert."""
    if not sent:
        return {}
    now = timezone.now()
    outcomes, rows, logs = {}, [], []
    with transaction.atomic():
        current = dict(
            Notification.objects.select_for_update()
            .filter(pk__in=[message.pk for message, *_ in sent], status=Status.SENDING)
            .values_list("pk", "attempts")
        )
        for message, result, subject, preview in sent:
            if current.get(message.pk) != message.attempts:
                outcomes[message.pk] = "skipped"  # the lease expired and another attempt took over
                continue
            status = Status.DELIVERED if result.status == "delivered" else Status.SENT
            message.status, message.provider = status, result.provider
            message.provider_message_id = result.provider_message_id[:200]
            message.subject_preview, message.body_preview = subject[:300], preview
            message.sent_at, message.updated_at = now, now
            message.lease_until = message.next_attempt_at = None
            rows.append(message)
            logs.append(
                log_row(message, Status.SENT, f"via {result.provider}", result.provider_message_id)
            )
            if status == Status.DELIVERED:
                logs.append(log_row(message, Status.DELIVERED, "reported by the backend"))
            outcomes[message.pk] = status
        if rows:
            _mark_sent(rows, now)
        NotificationLog.dangerously_unscoped.bulk_create(logs)
    return outcomes


# One UPDATE for the batch over arrays: Django's bulk_update (a CASE per field and row) took
# ~100 ms for 50 rows here, more than sending them.
_MARK_SENT = """
UPDATE notifications_notification n SET
  status = r.status, provider = r.provider, provider_message_id = r.provider_message_id,
  subject_preview = r.subject_preview, body_preview = r.body_preview,
  sent_at = %(now)s, updated_at = %(now)s, lease_until = NULL, next_attempt_at = NULL
FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(providers)s::text[],
            %(provider_ids)s::text[], %(subjects)s::text[], %(bodies)s::text[])
  AS r(id, status, provider, provider_message_id, subject_preview, body_preview)
WHERE n.id = r.id
"""


def _mark_sent(rows: list[Notification], now) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            _MARK_SENT,
            {
                "now": now,
                "ids": [m.pk for m in rows],
                "statuses": [m.status for m in rows],
                "providers": [m.provider for m in rows],
                "provider_ids": [m.provider_message_id for m in rows],
                "subjects": [m.subject_preview for m in rows],
                "bodies": [m.body_preview for m in rows],
            },
        )


def _record_failure(message, exc: ChannelError) -> str:
    now = timezone.now()
    max_attempts = _setting("NOTIFICATIONS_MAX_ATTEMPTS", 6)
    with transaction.atomic():
        if not _still_ours(message).exists():
            return "skipped"
        if exc.permanent or message.attempts >= max_attempts:
            Notification.objects.filter(pk=message.pk).update(
                status=Status.FAILED, lease_until=None, next_attempt_at=None, updated_at=now
            )
            log_status(message, Status.FAILED, exc.detail, exc.code)
            return "failed"
        retry_at = now + timedelta(seconds=retry_delay_s(message.attempts))
        Notification.objects.filter(pk=message.pk).update(
            status=Status.QUEUED, lease_until=None, next_attempt_at=retry_at, updated_at=now
        )
        log_status(
            message, Status.QUEUED, f"retry at {retry_at.isoformat()}: {exc.detail}", exc.code
        )
        return "retry"
