"""The development SMS backends (console, file): what they write, and their JSON callbacks."""

from __future__ import annotations

import json
import threading

import pytest
from django.test import RequestFactory

from notifications.channels.base import OutgoingSms
from notifications.channels.console import (
    ConsoleSmsBackend,
    FileSmsBackend,
    read_sms_file,
)
from notifications.channels.registry import get_sms_backend, reset_backends


def sms(i: int = 0, body: str = "Tu conductor llega en 3 paradas, señora") -> OutgoingSms:
    return OutgoingSms(
        to="+56961234567",
        body=body,
        sender="",
        idempotency_key=f"key-{i}",
        status_callback_url="https://ct.example.com/n/sms/console/status/",
    )


def test_the_console_backend_is_the_default_and_logs_without_a_file(settings, caplog):
    settings.NOTIFICATIONS_SMS_FILE = ""
    if hasattr(settings, "NOTIFICATIONS_SMS_BACKEND"):
        del settings.NOTIFICATIONS_SMS_BACKEND
    reset_backends()
    backend = get_sms_backend("console")
    assert type(backend) is ConsoleSmsBackend
    with caplog.at_level("INFO", logger="notifications.channels.console"):
        result = backend.send(sms())
    assert result.provider == "console"
    assert result.status == "delivered"
    assert result.provider_message_id.startswith("console-")
    assert "Tu conductor llega en 3 paradas, señora" in caplog.text
    with pytest.raises(LookupError):
        get_sms_backend("twilio")
    reset_backends()


def test_the_file_backend_appends_one_json_line_per_message(settings, tmp_path):
    settings.NOTIFICATIONS_SMS_FILE = str(tmp_path / "sms" / "out.jsonl")
    backend = FileSmsBackend()
    first = backend.send(sms(1))
    backend.send(sms(2, body="Entregado ✅"))

    records = read_sms_file(tmp_path / "sms" / "out.jsonl")
    assert [r["idempotency_key"] for r in records] == ["key-1", "key-2"]
    assert records[0]["id"] == first.provider_message_id
    assert records[0]["to"] == "+56961234567"
    assert records[0]["body"] == "Tu conductor llega en 3 paradas, señora"
    assert (records[0]["encoding"], records[0]["segments"]) == ("GSM-7", 1)
    assert (records[1]["encoding"], records[1]["body"]) == ("UCS-2", "Entregado ✅")
    assert records[0]["status_callback_url"].endswith("/n/sms/console/status/")
    raw = (tmp_path / "sms" / "out.jsonl").read_text(encoding="utf-8")
    assert "Entregado ✅" in raw  # readable as written, not \\u-escaped


def test_the_file_backend_defaults_to_var_sms_under_the_project(settings, tmp_path):
    settings.NOTIFICATIONS_SMS_FILE = ""
    settings.BASE_DIR = tmp_path
    FileSmsBackend().send(sms())
    [record] = read_sms_file(tmp_path / "var" / "sms" / "outbox.jsonl")
    assert record["idempotency_key"] == "key-0"


def test_concurrent_sends_never_interleave_lines(settings, tmp_path):
    settings.NOTIFICATIONS_SMS_FILE = str(tmp_path / "out.jsonl")
    backend = FileSmsBackend()
    body = "x" * 2000  # long lines are the ones that would tear

    def send_many(start: int) -> None:
        for i in range(start, start + 25):
            backend.send(sms(i, body=body))

    threads = [threading.Thread(target=send_many, args=(n * 100,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = read_sms_file(tmp_path / "out.jsonl")
    assert len(records) == 200
    assert {r["body"] for r in records} == {body}
    assert len({r["idempotency_key"] for r in records}) == 200


def post_json(data: dict, secret: str | None):
    headers = {} if secret is None else {"HTTP_X_CONSOLE_SMS_SECRET": secret}
    return RequestFactory().post(
        "/n/sms/console/status/", data=json.dumps(data), content_type="application/json", **headers
    )


def test_callbacks_need_the_configured_secret(settings):
    backend = ConsoleSmsBackend()
    settings.NOTIFICATIONS_SMS_CONSOLE_SECRET = "s3cret"
    assert backend.verify_request(post_json({}, "s3cret"))
    assert not backend.verify_request(post_json({}, "guess"))
    assert not backend.verify_request(post_json({}, None))
    settings.NOTIFICATIONS_SMS_CONSOLE_SECRET = ""  # not configured: nothing is accepted
    assert not backend.verify_request(post_json({}, ""))


def test_status_and_inbound_callbacks_parse_the_json_format():
    backend = FileSmsBackend()
    report = backend.parse_status(
        post_json(
            {
                "id": "console-abc",
                "status": "failed",
                "idempotency_key": "key-9",
                "error_code": "30003",
                "detail": "unreachable",
            },
            "s",
        )
    )
    assert (report.provider_message_id, report.status, report.idempotency_key) == (
        "console-abc",
        "failed",
        "key-9",
    )
    assert (report.error_code, report.detail) == ("30003", "unreachable")
    inbound = backend.parse_inbound(post_json({"from": "+56961234567", "body": "STOP"}, "s"))
    assert (inbound.from_number, inbound.to_number, inbound.body) == ("+56961234567", "", "STOP")
