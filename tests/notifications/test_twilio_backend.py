"""Sending SMS through the Twilio backend, against a local server shaped like Twilio's
Messages API (tests/notifications/twilio_server.py): the request it makes, and how each of
Twilio's answers is classified."""

from __future__ import annotations

import base64
import socket
from urllib.parse import parse_qs, urlsplit

import pytest

from notifications.channels.base import (
    OutgoingSms,
    PermanentChannelError,
    TemporaryChannelError,
)
from notifications.channels.registry import get_sms_backend, reset_backends
from notifications.channels.twilio import TwilioSmsBackend


def sms(**overrides) -> OutgoingSms:
    fields = {
        "to": "+56961234567",
        "body": "Tu pedido llega entre 10:00 y 10:30. Ñandú, señora.",
        "sender": "",
        "idempotency_key": "7b1f3c2e-0d9a-4f57-9d1e-000000000001",
        "status_callback_url": "https://ct.example.com/n/sms/twilio/status/",
    }
    return OutgoingSms(**{**fields, **overrides})


def test_the_configured_backend_is_twilio_and_a_send_follows_the_published_shape(
    twilio_server,
):
    backend = get_sms_backend("twilio")
    assert isinstance(backend, TwilioSmsBackend)

    result = backend.send(sms())

    assert result.provider == "twilio"
    assert result.status == "sent"
    assert result.provider_message_id.startswith("SM") and len(result.provider_message_id) == 34
    [request] = twilio_server.requests
    assert request.answered == 201
    assert request.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    credentials = base64.b64decode(request.headers["Authorization"].removeprefix("Basic "))
    user, _, password = credentials.decode().partition(":")
    assert (user, password) == (twilio_server.account_sid, twilio_server.auth_token)
    fields = request.fields
    assert fields["To"] == "+56961234567"
    assert fields["From"] == "+15005550006"
    assert "MessagingServiceSid" not in fields
    assert fields["Body"] == "Tu pedido llega entre 10:00 y 10:30. Ñandú, señora."
    callback = urlsplit(fields["StatusCallback"])
    assert callback.path == "/n/sms/twilio/status/"
    assert parse_qs(callback.query) == {"key": ["7b1f3c2e-0d9a-4f57-9d1e-000000000001"]}


def test_a_messaging_service_replaces_from_and_an_explicit_sender_wins(twilio_server, settings):
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "ab" * 16
    backend = get_sms_backend()
    backend.send(sms(status_callback_url=""))
    backend.send(sms(sender="+56229990000"))

    pooled, explicit = (request.fields for request in twilio_server.requests)
    assert pooled["MessagingServiceSid"] == "MG" + "ab" * 16
    assert "From" not in pooled
    assert "StatusCallback" not in pooled  # no public URL: no callback
    assert explicit["From"] == "+56229990000"
    assert "MessagingServiceSid" not in explicit


def test_a_callback_url_that_already_names_the_key_is_left_alone(twilio_server):
    key = "7b1f3c2e-0d9a-4f57-9d1e-000000000002"
    get_sms_backend().send(
        sms(idempotency_key=key, status_callback_url=f"https://ct.example.com/n/s/{key}/")
    )
    assert (
        twilio_server.requests[0].fields["StatusCallback"] == f"https://ct.example.com/n/s/{key}/"
    )


def test_connections_are_pooled_between_sends(twilio_server):
    backend = get_sms_backend()
    for _ in range(3):
        backend.send(sms())
    assert len(twilio_server.requests) == 3
    # One TCP connection (the same client port) carried all three requests.
    assert len({request.client_port for request in twilio_server.requests}) == 1


@pytest.mark.parametrize(
    ("kind", "code"),
    [("500", "20500"), ("503", "20503"), ("429", "20429")],
)
def test_server_errors_and_rate_limits_are_temporary(twilio_server, kind, code):
    twilio_server.fail_next(1, kind)
    backend = get_sms_backend()
    with pytest.raises(TemporaryChannelError) as caught:
        backend.send(sms())
    assert caught.value.code == code
    assert f"twilio.com/docs/errors/{code}" in caught.value.detail
    # The next attempt goes through: the failure was passing.
    assert backend.send(sms()).provider_message_id.startswith("SM")


@pytest.mark.parametrize(
    ("kind", "code"),
    [("21211", "21211"), ("21610", "21610"), ("21614", "21614")],
)
def test_a_refused_recipient_is_permanent_and_keeps_twilios_code(twilio_server, kind, code):
    twilio_server.fail_next(1, kind)
    with pytest.raises(PermanentChannelError) as caught:
        get_sms_backend().send(sms())
    assert caught.value.code == code  # 21610: the recipient texted STOP to our number
    assert caught.value.permanent


def test_the_server_itself_refuses_a_number_that_is_not_e164(twilio_server):
    with pytest.raises(PermanentChannelError) as caught:
        get_sms_backend().send(sms(to="961234567"))
    assert caught.value.code == "21211"
    assert twilio_server.requests[0].answered == 400


def test_wrong_credentials_are_a_permanent_misconfiguration(twilio_server, settings):
    settings.TWILIO_AUTH_TOKEN = "not-the-token"
    with pytest.raises(PermanentChannelError) as caught:
        get_sms_backend().send(sms())
    assert caught.value.code == "20003"
    assert "TWILIO_AUTH_TOKEN" in caught.value.detail
    assert twilio_server.requests[0].answered == 401


def test_missing_settings_fail_before_any_request(twilio_server, settings):
    settings.TWILIO_FROM = ""
    with pytest.raises(PermanentChannelError) as caught:
        get_sms_backend().send(sms())
    assert caught.value.code == "configuration"
    settings.TWILIO_ACCOUNT_SID = ""
    with pytest.raises(PermanentChannelError, match="TWILIO_ACCOUNT_SID"):
        get_sms_backend().send(sms(sender="+56229990000"))
    assert twilio_server.requests == []


def test_a_timeout_after_the_request_was_sent_is_temporary_but_ambiguous(twilio_server):
    twilio_server.fail_next(1, "slow")  # answers after 2 s; the backend waits 1 s
    with pytest.raises(TemporaryChannelError) as caught:
        get_sms_backend().send(sms())
    assert caught.value.code == "ambiguous"
    # Twilio had the request: a retry may send the message twice (no idempotency key).
    assert len(twilio_server.requests) == 1
    assert twilio_server.requests[0].fields["To"] == "+56961234567"


def test_an_unreachable_api_is_temporary_and_not_ambiguous(settings):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.NOTIFICATIONS_SMS_BACKEND = "notifications.channels.twilio.TwilioSmsBackend"
    settings.TWILIO_API_BASE = f"http://127.0.0.1:{port}"
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "t"
    settings.TWILIO_FROM = "+15005550006"
    reset_backends()
    try:
        with pytest.raises(TemporaryChannelError) as caught:
            get_sms_backend().send(sms())
        assert caught.value.code == "connection"
    finally:
        reset_backends()
