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
from datetime import timedelta
from email.utils import formataddr

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template import TemplateSyntaxError
from django.utils import timezone

from notifications.channels.base import (
    ChannelError,
    OutgoingEmail,
    OutgoingSms,
    PermanentChannelError,
    SendResult,
)
from notifications.channels.email import send_email
from notifications.channels.registry import get_sms_backend
from notifications.models import (
    Audience,
    Channel,
    Notification,
    Status,
    SuppressionReason,
)
from notifications.policy import settings_for, trigger_config
from notifications.rendering import redact, render_message, with_sms_footer
from notifications.rules import quiet_hours_end, still_sendable
from notifications.services.messages import log_status, organization_zone
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


def _claim(notification_id: int, now) -> Notification | None:
    """The message, now `sending` under a lease, or None (not due, gone, another worker has
    it, or a rule suppressed it)."""
    with transaction.atomic():
        message = (
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("organization", "shipment")
            .filter(due(now), pk=notification_id)
            .first()
        )
        if message is None:
            return None
        if not trigger_config(message.organization_id, message.trigger).enabled:
            _suppress(message, SuppressionReason.DISABLED)
            return None
        options = settings_for(message.organization)
        reason = still_sendable(options, message, now=now)
        if reason:
            _suppress(message, reason)
            return None
        if message.audience == Audience.CUSTOMER and _held_for_quiet_hours(message, options, now):
            return None
        message.status = Status.SENDING
        message.attempts += 1
        message.lease_until = now + timedelta(seconds=_setting("NOTIFICATIONS_LEASE_S", 120))
        message.save(update_fields=["status", "attempts", "lease_until", "updated_at"])
        log_status(message, Status.SENDING, f"attempt {message.attempts}")
        return message


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


def build_outgoing(message: Notification) -> tuple[OutgoingEmail | OutgoingSms, str]:
    """The message for the channel, rendered now (the tracking link is derived at send time
    and never stored), and its preview text with the link redacted."""
    organization = message.organization
    context = dict(message.context)
    secret = ""
    if message.shipment is not None:
        secret = notification_link_url(message.shipment)
        context["tracking_url"] = secret
    if message.channel == Channel.EMAIL and message.audience == Audience.CUSTOMER:
        context["unsubscribe_url"] = unsubscribe_url(
            organization.pk, Channel.EMAIL, message.address
        )
    rendered = render_message(
        organization_id=organization.pk,
        trigger=message.trigger,
        channel=message.channel,
        language=message.language,
        context=context,
    )
    options = settings_for(organization)
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


def _transmit(outgoing) -> SendResult:
    if isinstance(outgoing, OutgoingSms):
        return get_sms_backend().send(outgoing)
    return send_email(outgoing)


def notification_send(*, notification_id: int) -> str:
    """Send one due message (organization in scope). Returns what happened: "sent",
    "delivered", "retry", "failed", or "skipped" (not due, claimed elsewhere, suppressed).
    Side effects: the message's status and a log row per change; the channel's call."""
    message = _claim(notification_id, timezone.now())
    if message is None:
        return "skipped"
    try:
        outgoing, preview = build_outgoing(message)
        subject = getattr(outgoing, "subject", "")
        result = _transmit(outgoing)
    except TemplateSyntaxError as exc:
        return _record_failure(message, PermanentChannelError(f"Template error: {exc}"))
    except ChannelError as exc:
        return _record_failure(message, exc)
    except Exception as exc:  # noqa: BLE001 - an unexpected error is retried, then fails
        logger.exception("sending notification %s failed", message.pk)
        return _record_failure(message, ChannelError(f"{type(exc).__name__}: {exc}"))
    return _record_success(message, result, subject=subject, preview=preview)


def _still_ours(message: Notification):
    return Notification.objects.select_for_update().filter(
        pk=message.pk, status=Status.SENDING, attempts=message.attempts
    )


def _record_success(message, result: SendResult, *, subject: str, preview: str) -> str:
    status = Status.DELIVERED if result.status == "delivered" else Status.SENT
    now = timezone.now()
    with transaction.atomic():
        if not _still_ours(message).exists():
            return "skipped"  # the lease expired and another attempt took over
        Notification.objects.filter(pk=message.pk).update(
            status=status,
            provider=result.provider,
            provider_message_id=result.provider_message_id[:200],
            subject_preview=subject[:300],
            body_preview=preview,
            sent_at=now,
            lease_until=None,
            next_attempt_at=None,
            updated_at=now,
        )
        log_status(message, Status.SENT, f"via {result.provider}", result.provider_message_id)
        if status == Status.DELIVERED:
            log_status(message, Status.DELIVERED, "reported by the backend")
    return status


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
