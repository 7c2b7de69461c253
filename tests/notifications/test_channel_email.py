"""E-mail through a real SMTP server (aiosmtpd): headers, both parts and non-ASCII text intact,
one session for a batch, and each SMTP failure classified as temporary or permanent."""

from __future__ import annotations

import socket
from email.utils import parsedate_to_datetime

import pytest

from notifications.channels.base import (
    OutgoingEmail,
    PermanentChannelError,
    TemporaryChannelError,
)
from notifications.channels.email import message_id, open_connection, send_email

SUBJECT = "Tu pedido llegará mañana entre 10:00 y 10:30 — ¡gracias, Begoña! ✅"
TEXT = "Hola Begoña,\n\nTu pedido está en camino. Añade instrucciones aquí: https://x/t/abc\n"
HTML = "<p>Hola <b>Begoña</b>, tu pedido está en camino. <a href='https://x/t/abc'>Sigue</a></p>"


def email(to="begona@example.cl", key="b7e2", **overrides) -> OutgoingEmail:
    fields = {
        "to": to,
        "subject": SUBJECT,
        "text": TEXT,
        "html": HTML,
        "from_email": "Logística Ñuñoa <noreply@example.cl>",
        "idempotency_key": key,
        "reply_to": ("soporte@example.cl",),
        "headers": {
            "List-Unsubscribe": "<https://ct.example.com/n/unsubscribe/tok/>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    }
    return OutgoingEmail(**{**fields, **overrides})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_headers_are_those_a_mailbox_expects(smtp_server, settings):
    settings.NOTIFICATIONS_MESSAGE_ID_DOMAIN = "ct.example.com"
    result = send_email(email(key="3f0c9a"))

    [message] = smtp_server.messages
    assert result.provider_message_id == "<3f0c9a@ct.example.com>" == message["Message-ID"]
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Reply-To"] == "soporte@example.cl"
    assert message["List-Unsubscribe"] == "<https://ct.example.com/n/unsubscribe/tok/>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["To"] == "begona@example.cl"
    assert message["From"].addresses[0].display_name == "Logística Ñuñoa"
    assert message["From"].addresses[0].addr_spec == "noreply@example.cl"
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "noreply@example.cl"
    assert envelope.rcpt_tos == ["begona@example.cl"]


def test_the_accented_subject_and_both_parts_arrive_intact(smtp_server):
    send_email(email())

    [message] = smtp_server.messages
    assert message["Subject"] == SUBJECT
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text.get_content_charset() == "utf-8"
    # Line ends travel as CRLF (SMTP); the words, accents and links arrive as written.
    assert text.get_content().replace("\r\n", "\n") == TEXT
    assert html.get_content().strip() == HTML


def test_a_text_only_message_has_one_part(smtp_server):
    send_email(email(html=""))
    [message] = smtp_server.messages
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == TEXT


def test_a_batch_shares_one_smtp_session(smtp_server):
    with open_connection() as connection:
        results = [
            send_email(email(to=f"r{i}@example.cl", key=f"k{i}"), connection=connection)
            for i in range(5)
        ]
    assert [m["To"] for m in smtp_server.messages] == [f"r{i}@example.cl" for i in range(5)]
    assert [r.provider_message_id for r in results] == [message_id(f"k{i}") for i in range(5)]
    assert len(set(smtp_server.peers)) == 1


def test_a_batch_goes_on_after_a_refused_recipient_and_a_failed_data(smtp_server):
    smtp_server.refuse["gone@example.cl"] = 550
    with open_connection() as connection:
        send_email(email(to="a@example.cl"), connection=connection)
        with pytest.raises(PermanentChannelError) as refused:
            send_email(email(to="gone@example.cl"), connection=connection)
        smtp_server.fail_next_data = 451
        with pytest.raises(TemporaryChannelError) as deferred:
            send_email(email(to="b@example.cl"), connection=connection)
        send_email(email(to="c@example.cl"), connection=connection)
    assert refused.value.code == "550"
    assert deferred.value.code == "451"
    assert [m["To"] for m in smtp_server.messages] == ["a@example.cl", "c@example.cl"]
    assert len(set(smtp_server.peers)) == 1  # the same session throughout


def test_a_batch_reconnects_after_the_session_was_lost(smtp_server):
    with open_connection() as connection:
        send_email(email(to="a@example.cl"), connection=connection)
        connection.connection.close()  # the socket goes away under the batch
        with pytest.raises(TemporaryChannelError) as lost:
            send_email(email(to="b@example.cl"), connection=connection)
        send_email(email(to="c@example.cl"), connection=connection)
        send_email(email(to="d@example.cl"), connection=connection)
    assert lost.value.code == "disconnected"
    assert [m["To"] for m in smtp_server.messages] == [
        "a@example.cl",
        "c@example.cl",
        "d@example.cl",
    ]
    first, second, third = smtp_server.peers
    assert first != second == third  # one new session, kept for the rest of the batch


@pytest.mark.parametrize(
    ("where", "code", "error"),
    [
        ("rcpt", 450, TemporaryChannelError),
        ("rcpt", 550, PermanentChannelError),
        ("data", 451, TemporaryChannelError),
        ("data", 554, PermanentChannelError),
    ],
)
def test_smtp_codes_are_classified(smtp_server, where, code, error):
    if where == "rcpt":
        smtp_server.refuse["ana@example.cl"] = code
    else:
        smtp_server.fail_next_data = code
    with pytest.raises(error) as caught:
        send_email(email(to="ana@example.cl"))
    assert caught.value.code == str(code)
    assert smtp_server.messages == []


def test_a_refused_connection_is_temporary(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.EMAIL_USE_TLS = False
    with pytest.raises(TemporaryChannelError) as caught:
        send_email(email())
    assert caught.value.code == "connection"
    with pytest.raises(TemporaryChannelError), open_connection():
        pass


def test_a_server_that_never_greets_times_out_as_temporary(settings):
    with socket.socket() as silent:  # accepts connections (backlog) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", silent.getsockname()[1]
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_TIMEOUT = 0.5
        with pytest.raises(TemporaryChannelError) as caught:
            send_email(email())
    assert caught.value.code == "timeout"


def test_a_header_with_a_newline_is_permanent(smtp_server):
    with pytest.raises(PermanentChannelError) as caught:
        send_email(email(subject="Hola\nBcc: everyone@example.cl"))
    assert caught.value.code == "invalid"
    assert smtp_server.messages == []


@pytest.mark.parametrize(
    "subject",
    [
        "Entregado",
        "Ñ",
        "Tu pedido llegó 😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀 " * 3,
        "Reprogramación: " + "áéíóú ñ " * 30,
    ],
)
def test_subjects_of_any_length_and_script_survive(smtp_server, subject):
    send_email(email(subject=subject))
    [message] = smtp_server.messages
    assert message["Subject"] == subject
    head = smtp_server.envelopes[0].content.split(b"\r\n\r\n")[0].decode("ascii")
    assert all(len(line) <= 78 for line in head.split("\r\n"))
