"""The contract between the notification services and the channels that carry messages.

The services hand a channel an `OutgoingEmail` or `OutgoingSms` and get a `SendResult`, or a
`ChannelError` that says whether trying again can help:

- `TemporaryChannelError`: the provider or the network failed in a way that may pass
  (timeouts, 429, 5xx, SMTP 4xx): the message is retried with backoff;
- `PermanentChannelError`: retrying cannot help (invalid number, SMTP 5xx recipient refused,
  provider 4xx for the request itself): the message is failed at once.

Every message carries an `idempotency_key` (the notification's uuid): providers that honour
one receive it; the key also names the message in status callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutgoingEmail:
    to: str  # a validated, normalized address
    subject: str
    text: str  # the plain-text part (always sent)
    html: str  # the HTML part ("" for text only)
    from_email: str  # "Name <address>"
    idempotency_key: str
    reply_to: tuple[str, ...] = ()
    # Extra headers, e.g. List-Unsubscribe and List-Unsubscribe-Post (RFC 8058).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutgoingSms:
    to: str  # E.164, e.g. "+56912345678"
    body: str
    sender: str  # E.164 number or alphanumeric sender id; "" for the backend's default
    idempotency_key: str
    # Where the provider should report delivery ("" when the platform has no public URL).
    status_callback_url: str = ""


@dataclass(frozen=True)
class SendResult:
    provider: str  # "smtp", "twilio", "console" ...
    provider_message_id: str  # the provider's id for the message ("" when it has none)
    # "sent": handed over, delivery unknown until a callback; "delivered": the backend knows
    # it arrived (development backends).
    status: str = "sent"


@dataclass(frozen=True)
class StatusReport:
    """A provider's delivery report (status callback), normalized."""

    provider_message_id: str
    status: str  # "sent", "delivered", "failed", "bounced"
    idempotency_key: str = ""
    error_code: str = ""
    detail: str = ""


@dataclass(frozen=True)
class InboundSms:
    """A message a recipient sent to one of the organization's numbers (STOP, START ...)."""

    from_number: str  # E.164
    to_number: str  # E.164
    body: str


class ChannelError(Exception):
    permanent = False

    def __init__(self, detail: str, *, code: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class TemporaryChannelError(ChannelError):
    permanent = False


class PermanentChannelError(ChannelError):
    permanent = True


class SmsBackend(Protocol):
    """One SMS provider. `send` delivers or raises a `ChannelError`; the parse methods read the
    provider's callbacks (after `verify_request` accepted them)."""

    name: str

    def send(self, message: OutgoingSms) -> SendResult: ...

    def verify_request(self, request) -> bool: ...

    def parse_status(self, request) -> StatusReport: ...

    def parse_inbound(self, request) -> InboundSms: ...
