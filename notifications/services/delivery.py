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
from datetime import timedelta
from email.utils import formataddr

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template import TemplateSyntaxError
from django.utils import timezone

from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from notifications.channels.base import (
    ChannelError,
    OutgoingEmail,
    OutgoingSms,
    PermanentChannelError,
    SendResult,
    StatusReport,
)
from notifications.models import (
    PROVIDER_RANK,
    Audience,
    Channel,
    Notification,
    Status,
    SuppressionReason,
)
from notifications.policy import settings_for, trigger_config
from notifications.rendering import redact, render_message, with_sms_footer
from notifications.rules import still_sendable
from notifications.services.messages import log_status
from notifications.unsubscribe import unsubscribe_url

logger = logging.getLogger(__name__)


def _setting(name: str, default):
    return getattr(settings, name, default)


def retry_delay_s(attempts: int) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, base × 2^(attempts-1)))."""
    base = _setting("NOTIFICATIONS_RETRY_BASE_S", 30)
    cap = _setting("NOTIFICATIONS_RETRY_MAX_S", 3600)
    return random.uniform(0, min(cap, base * 2 ** max(attempts - 1, 0)))  # noqa: S311


def _due(now) -> Q:
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
            .filter(_due(now), pk=notification_id)
            .first()
        )
        if message is None:
            return None
        if not trigger_config(message.organization_id, message.trigger).enabled:
            _suppress(message, SuppressionReason.DISABLED)
            return None
        reason = still_sendable(settings_for(message.organization), message, now=now)
        if reason:
            _suppress(message, reason)
            return None
        message.status = Status.SENDING
        message.attempts += 1
        message.lease_until = now + timedelta(seconds=_setting("NOTIFICATIONS_LEASE_S", 120))
        message.save(update_fields=["status", "attempts", "lease_until", "updated_at"])
        log_status(message, Status.SENDING, f"attempt {message.attempts}")
        return message


def _first_sms_to(message: Notification) -> bool:
    return not Notification.objects.filter(
        channel=Channel.SMS,
        address=message.address,
        status__in=[Status.SENT, Status.DELIVERED],
    ).exists()


def build_outgoing(message: Notification) -> tuple[OutgoingEmail | OutgoingSms, str]:
    """The message for the channel, rendered now (the tracking link is derived at send time
    and never stored), and its preview text with the link redacted."""
    from tracking.services.tracking_links import notification_link_url

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
    from notifications.channels.registry import get_sms_backend

    base = settings.PUBLIC_BASE_URL
    if not base:
        return ""
    return f"{base}/n/sms/{get_sms_backend().name}/status/{key}/"


def _transmit(outgoing) -> SendResult:
    from notifications.channels.email import send_email
    from notifications.channels.registry import get_sms_backend

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


# --- the safety net ------------------------------------------------------------------------

# A queued message whose send task was lost (broker down at commit) is picked up after this.
LOST_ENQUEUE_S = 30


def release_expired_leases(now) -> int:
    """Messages stuck in `sending` past their lease (a worker died) go back to the queue."""
    with dangerously_all_organizations():
        stuck = list(
            Notification.objects.filter(status=Status.SENDING, lease_until__lt=now).values_list(
                "pk", "organization_id"
            )
        )
        for pk, _org in stuck:
            with transaction.atomic():
                updated = Notification.objects.filter(
                    pk=pk, status=Status.SENDING, lease_until__lt=now
                ).update(
                    status=Status.QUEUED, lease_until=None, next_attempt_at=now, updated_at=now
                )
                if updated:
                    log_status(
                        Notification.objects.get(pk=pk), Status.QUEUED, "lease expired: re-queued"
                    )
    return len(stuck)


def due_messages(now, *, limit: int = 500) -> list[tuple[int, int]]:
    """(id, organization id) of messages to send now: held ones whose time came, retries
    whose time came, and queued ones older than LOST_ENQUEUE_S (their task may be lost)."""
    lost = now - timedelta(seconds=LOST_ENQUEUE_S)
    with dangerously_all_organizations():
        rows = (
            Notification.objects.filter(_due(now))
            .filter(
                Q(status=Status.HELD) | Q(next_attempt_at__isnull=False) | Q(created_at__lte=lost)
            )
            .order_by("send_after", "id")
            .values_list("pk", "organization_id")[:limit]
        )
        return list(rows)


def dispatch_due(*, budget_s: float = 20.0) -> int:
    """The beat task's work: release expired leases, then send due messages for at most
    `budget_s` seconds. Returns how many were attempted."""
    from control_tower.models import Organization

    started = time.monotonic()
    now = timezone.now()
    release_expired_leases(now)
    attempted = 0
    organizations = {}
    for pk, organization_id in due_messages(now):
        if time.monotonic() - started > budget_s:
            break
        organization = organizations.get(organization_id)
        if organization is None:
            organization = Organization.objects.get(pk=organization_id)
            organizations[organization_id] = organization
        with organization_scope(organization):
            notification_send(notification_id=pk)
        attempted += 1
    return attempted


def notification_retry_now(*, message: Notification) -> bool:
    """Put a failed message back in the queue (admin "retry now"): attempts start again."""
    with transaction.atomic():
        updated = Notification.objects.filter(pk=message.pk, status=Status.FAILED).update(
            status=Status.QUEUED,
            attempts=0,
            next_attempt_at=None,
            send_after=timezone.now(),
            updated_at=timezone.now(),
        )
        if updated:
            log_status(message, Status.QUEUED, "retry requested")
            from control_tower.tenancy.enqueue import enqueue_on_commit

            enqueue_on_commit(
                "notifications.send",
                notification_id=message.pk,
                organization_id=message.organization_id,
            )
    return bool(updated)


# --- provider reports ----------------------------------------------------------------------

REPORTED = {
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "failed": Status.FAILED,
    "undelivered": Status.FAILED,
    "bounced": Status.BOUNCED,
}


def record_provider_status(provider: str, report: StatusReport) -> Notification | None:
    """Apply a provider's delivery report to its message (found by idempotency key, else by
    provider message id). Idempotent; only moves forward (delivered is never undone, a late
    "sent" after "delivered" changes nothing). Returns the message, or None if unknown.

    Runs without an organization in scope: the key (a random uuid) or the provider's id
    names the message, like a tracking token names its link."""
    status = REPORTED.get(report.status)
    with dangerously_all_organizations(), transaction.atomic():
        candidates = Notification.objects.select_for_update()
        message = None
        if report.idempotency_key:
            try:
                message = candidates.filter(idempotency_key=report.idempotency_key).first()
            except Exception:  # noqa: BLE001 - not a uuid
                message = None
        if message is None and report.provider_message_id:
            message = candidates.filter(
                provider=provider, provider_message_id=report.provider_message_id
            ).first()
        if message is None or status is None:
            return message
        current = PROVIDER_RANK.get(message.status)
        if current is None or PROVIDER_RANK[status] <= current:
            return message
        message.status = status
        update = ["status", "updated_at"]
        if report.provider_message_id and not message.provider_message_id:
            message.provider_message_id = report.provider_message_id[:200]
            update.append("provider_message_id")
        message.save(update_fields=update)
        log_status(message, status, report.detail or f"reported by {provider}", report.error_code)
        return message
