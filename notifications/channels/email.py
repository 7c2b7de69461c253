"""E-mail through Django's e-mail backends (SMTP in production and tests): a text part and an
HTML part, the organization's reply-to, List-Unsubscribe headers, and a Message-ID derived from
the notification's idempotency key, so a receiving system can recognise a re-sent message.

One message: `send_email(message)` opens and closes its own connection. A batch:

    with open_connection() as connection:
        for message in messages:
            send_email(message, connection=connection)

SMTP answers are classified once, here: 4xx (and a dropped or refused connection, a timeout)
is a TemporaryChannelError, 5xx a PermanentChannelError. docs/NOTIFICATION_CHANNELS.md.
"""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from email.utils import format_datetime

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection
from django.utils import timezone

from notifications.channels.base import (
    OutgoingEmail,
    PermanentChannelError,
    SendResult,
    TemporaryChannelError,
)

# Django's SMTP backend waits forever without EMAIL_TIMEOUT; a hung server must not hold a
# worker, so the notifications never do.
DEFAULT_TIMEOUT_S = 10.0
# RFC 3834: a machine wrote this; auto-responders (out-of-office) must not answer it.
AUTOMATIC_HEADERS = {"Auto-Submitted": "auto-generated"}


def message_id(idempotency_key: str) -> str:
    domain = getattr(settings, "NOTIFICATIONS_MESSAGE_ID_DOMAIN", "control-tower.local")
    return f"<{idempotency_key}@{domain}>"


def new_connection():
    """A Django e-mail backend instance (not yet opened), never failing silently and never
    waiting without a timeout."""
    timeout = getattr(settings, "EMAIL_TIMEOUT", None) or DEFAULT_TIMEOUT_S
    return get_connection(fail_silently=False, timeout=timeout)


@contextmanager
def open_connection() -> Iterator[object]:
    """One connection for a batch of `send_email` calls (one SMTP session, one TCP and TLS
    handshake, instead of one per message). Raises TemporaryChannelError if the server
    cannot be reached. A message that fails does not end the batch: if the session was
    lost, the next `send_email` opens a new one."""
    connection = new_connection()
    try:
        connection.open()
    except (smtplib.SMTPException, OSError) as exc:
        raise _classify(exc) from exc
    try:
        yield connection
    finally:
        with suppress(smtplib.SMTPException, OSError):
            connection.close()


def send_email(message: OutgoingEmail, *, connection=None) -> SendResult:
    """Send one message (on `connection` when given, see `open_connection`); raises
    TemporaryChannelError or PermanentChannelError."""
    mid = message_id(message.idempotency_key)
    try:
        email = email_message(message, mid, connection or new_connection())
        if connection is not None:
            _reopen_if_lost(connection)
        email.send(fail_silently=False)
    except (BadHeaderError, ValueError) as exc:
        # A newline in a header, an address Django cannot encode: the same on every attempt.
        raise PermanentChannelError(f"Cannot build the message: {exc}", code="invalid") from exc
    except (smtplib.SMTPException, OSError) as exc:
        if connection is not None and not _answered(exc):
            _drop(connection)  # the session is gone or half-way through a transaction
        raise _classify(exc) from exc
    return SendResult(provider="smtp", provider_message_id=mid, status="sent")


def email_message(message: OutgoingEmail, mid: str, connection) -> EmailMultiAlternatives:
    """The Django message `send_email` sends (exposed for the benchmark and previews)."""
    email = EmailMultiAlternatives(
        subject=encoded_subject(message.subject),
        body=message.text,
        from_email=message.from_email,
        to=[message.to],
        reply_to=list(message.reply_to),
        # Date in UTC as "+0000" (Django's default "-0000" reads as "zone unknown").
        headers={
            **AUTOMATIC_HEADERS,
            **message.headers,
            "Date": format_datetime(timezone.now()),
            "Message-ID": mid,
        },
        connection=connection,
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    return email


def encoded_subject(subject: str) -> str:
    """A non-ASCII subject as RFC 2047 encoded-words short enough that the first one fits on
    the "Subject:" line. Django's own encoding folds a long accented subject before its first
    word ("Subject: " then a continuation line), which strict parsers, Python's included, read
    back with a leading space."""
    if subject.isascii():
        return subject
    words, chunk = [], b""
    for char in subject:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _SUBJECT_WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += encoded
    words.append(chunk)
    return " ".join(f"=?utf-8?b?{base64.b64encode(word).decode()}?=" for word in words)


# 39 bytes are 52 base64 characters: "Subject: =?utf-8?b?…?=" stays within 78 (RFC 5322).
_SUBJECT_WORD_BYTES = 39


def _classify(exc: BaseException) -> Exception:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        error = PermanentChannelError if codes and min(codes) >= 500 else TemporaryChannelError
        return error(f"Recipient refused: {exc.recipients}", code=str(codes[0] if codes else ""))
    if isinstance(exc, smtplib.SMTPResponseException):
        error = PermanentChannelError if exc.smtp_code >= 500 else TemporaryChannelError
        return error(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", code=str(exc.smtp_code))
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):  # smtplib rewraps a read timeout
            return TemporaryChannelError(f"SMTP server timed out: {exc}", code="timeout")
        return TemporaryChannelError(f"SMTP server disconnected: {exc}", code="disconnected")
    if isinstance(exc, TimeoutError):
        return TemporaryChannelError(f"SMTP server timed out: {exc}", code="timeout")
    return TemporaryChannelError(f"SMTP unavailable: {exc!r}", code="connection")


def _answered(exc: BaseException) -> bool:
    """The server answered with a code (smtplib then resets the transaction with RSET): the
    session can carry the next message."""
    return isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException)


def _reopen_if_lost(connection) -> None:
    # Django's SMTP backend sets `.connection` to None once closed; with a closed backend,
    # `send()` would open and close a session per message, so the batch reopens it here.
    if getattr(connection, "connection", False) is None:
        connection.open()


def _drop(connection) -> None:
    with suppress(smtplib.SMTPException, OSError):
        connection.close()
