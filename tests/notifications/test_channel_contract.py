"""The shared channel contract: addresses, SMS length, e-mail through a real SMTP server."""

from __future__ import annotations

import pytest

from notifications.addresses import InvalidAddress, normalize_email, normalize_phone
from notifications.channels.base import OutgoingEmail, PermanentChannelError
from notifications.channels.email import send_email
from notifications.segments import sms_length


def test_phone_numbers_normalize_to_e164():
    assert normalize_phone("+56 9 6123 4567") == "+56961234567"
    assert normalize_phone("9 6123 4567", region="CL") == "+56961234567"
    with pytest.raises(InvalidAddress):
        normalize_phone("12", region="CL")
    with pytest.raises(InvalidAddress):
        normalize_phone("not a number")


def test_emails_keep_the_local_part_and_lower_the_domain():
    assert normalize_email(" Ana.Perez@Example.CL ") == "Ana.Perez@example.cl"
    with pytest.raises(InvalidAddress):
        normalize_email("ana@")


def test_sms_length_counts_gsm7_and_ucs2_segments():
    assert sms_length("a" * 160).as_dict() == {
        "encoding": "GSM-7",
        "units": 160,
        "segments": 1,
        "per_segment": 160,
    }
    assert sms_length("a" * 161).segments == 2
    assert sms_length("€" * 80).units == 160  # extension characters count double
    assert sms_length("Tu pedido llegó ✅").encoding == "UCS-2"
    assert sms_length("ñ" * 160).encoding == "GSM-7"
    assert sms_length("😀" * 35).units == 70


def test_email_reaches_a_real_smtp_server_with_both_parts(smtp_server):
    result = send_email(
        OutgoingEmail(
            to="ana@example.cl",
            subject="Tu pedido",
            text="Hola Ana",
            html="<p>Hola Ana</p>",
            from_email="Demo <noreply@example.cl>",
            idempotency_key="0f8e",
            reply_to=("help@example.cl",),
            headers={"List-Unsubscribe": "<https://x/u>"},
        )
    )
    assert result.provider == "smtp"
    [message] = smtp_server.messages
    assert message["Message-ID"] == result.provider_message_id
    assert message["Reply-To"] == "help@example.cl"
    assert message["List-Unsubscribe"] == "<https://x/u>"
    kinds = {part.get_content_type() for part in message.walk()}
    assert {"text/plain", "text/html"} <= kinds


def test_a_refused_recipient_is_a_permanent_error(smtp_server):
    smtp_server.refuse["gone@example.cl"] = 550
    with pytest.raises(PermanentChannelError):
        send_email(
            OutgoingEmail(
                to="gone@example.cl",
                subject="s",
                text="t",
                html="",
                from_email="noreply@example.cl",
                idempotency_key="k",
            )
        )


def test_a_number_without_a_country_says_how_to_write_it():
    with pytest.raises(InvalidAddress, match=r"country code, e.g. \+56"):
        normalize_phone("12")
