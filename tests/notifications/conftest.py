"""Real servers for the notification tests: SMTP (aiosmtpd, in a thread) and a Twilio-shaped
HTTP API (tests/notifications/twilio_server.py)."""

from __future__ import annotations

import email
import email.policy
import socket
import threading

import pytest
from aiosmtpd.controller import Controller


class _Collect:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list = []
        self.peers: list = []  # the client's (host, port) per accepted message: one per session
        self.refuse: dict[str, int] = {}  # recipient -> SMTP code to answer at RCPT
        self.fail_next_data = 0  # an SMTP code to answer the next DATA with (then cleared)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.refuse.get(address)
        if code:
            return f"{code} {'Mailbox unavailable' if code >= 500 else 'Try again later'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.fail_next_data:
            code, self.fail_next_data = self.fail_next_data, 0
            return f"{code} {'Message rejected' if code >= 500 else 'Try again later'}"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(parsed)
            self.envelopes.append(envelope)
            self.peers.append(session.peer)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    """Starts aiosmtpd on a free port and points Django's SMTP backend at it. Yields the
    handler: `.messages` (parsed `EmailMessage`s), `.envelopes`, `.refuse` (address -> code
    answered at RCPT), `.fail_next_data` (a code answered at the next DATA), `.port`."""
    handler = _Collect()
    with socket.socket() as probe:  # a free port (aiosmtpd's start-up check needs a real one)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = port
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_HOST_USER = ""
        settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        yield handler
    finally:
        controller.stop()


TWILIO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TWILIO_AUTH_TOKEN = "test-auth-token-not-a-secret"


@pytest.fixture
def twilio_server(settings):
    """A Twilio-shaped Messages API on a free port, with the Twilio backend configured to use
    it (TWILIO_* settings, NOTIFICATIONS_SMS_BACKEND). Yields the TwilioServer: `.requests`,
    `.fail_next(n, kind)`, `.account_sid`, `.auth_token`."""
    from notifications.channels.registry import reset_backends
    from tests.notifications.twilio_server import TwilioServer

    server = TwilioServer(account_sid=TWILIO_ACCOUNT_SID, auth_token=TWILIO_AUTH_TOKEN).start()
    settings.NOTIFICATIONS_SMS_BACKEND = "notifications.channels.twilio.TwilioSmsBackend"
    settings.TWILIO_API_BASE = server.base_url
    settings.TWILIO_ACCOUNT_SID = TWILIO_ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = TWILIO_AUTH_TOKEN
    settings.TWILIO_FROM = "+15005550006"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_TIMEOUT_S = 1.0
    reset_backends()
    try:
        yield server
    finally:
        reset_backends()
        server.stop()
