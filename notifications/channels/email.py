"""E-mail through Django's e-mail backends (SMTP in production and tests): a text part and an
HTML part, the organization's reply-to, List-Unsubscribe headers, and a Message-ID derived from
the notification's idempotency key, so a receiving system can recognise a re-sent message."""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from notifications.channels.base import (
    OutgoingEmail,
    PermanentChannelError,
    SendResult,
    TemporaryChannelError,
)


def message_id(idempotency_key: str) -> str:
    domain = getattr(settings, "NOTIFICATIONS_MESSAGE_ID_DOMAIN", "control-tower.local")
    return f"<{idempotency_key}@{domain}>"


def send_email(message: OutgoingEmail, *, connection=None) -> SendResult:
    """Send one message; raises TemporaryChannelError or PermanentChannelError."""
    mid = message_id(message.idempotency_key)
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        from_email=message.from_email,
        to=[message.to],
        reply_to=list(message.reply_to),
        headers={"Message-ID": mid, **message.headers},
        connection=connection or get_connection(fail_silently=False),
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        error = PermanentChannelError if all(c >= 500 for c in codes) else TemporaryChannelError
        raise error(f"Recipient refused: {exc.recipients}", code=str(codes[0])) from exc
    except smtplib.SMTPResponseException as exc:
        error = PermanentChannelError if exc.smtp_code >= 500 else TemporaryChannelError
        raise error(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", code=str(exc.smtp_code)) from exc
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise TemporaryChannelError(f"SMTP unavailable: {exc}", code="connection") from exc
    return SendResult(provider="smtp", provider_message_id=mid, status="sent")
