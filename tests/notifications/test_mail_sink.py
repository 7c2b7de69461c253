"""The demo's mail sink: messages received over real SMTP become .eml files, written whole; the
`mail_sink` command runs it in the foreground and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from notifications.channels.base import OutgoingEmail
from notifications.channels.email import send_email
from notifications.mailsink import message_names, message_path, start_sink, store_message
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def parse(path: Path):
    with open(path, "rb") as handle:
        return BytesParser(policy=policy.default).parse(handle)


def test_a_stored_message_is_written_whole_with_its_envelope(tmp_path):
    path = store_message(
        tmp_path,
        b"Subject: hola\r\nTo: ana@example.cl\r\n\r\nbody\r\n",
        mail_from="noreply@example.cl",
        rcpt_tos=["ana@example.cl", "bcc@example.cl"],
    )
    assert path.parent == tmp_path
    assert message_names(tmp_path) == [path.name]
    assert list((tmp_path / "tmp").iterdir()) == []  # staged, then renamed
    message = parse(path)
    assert message["Return-Path"] == "<noreply@example.cl>"
    assert message["X-Original-To"] == "ana@example.cl, bcc@example.cl"
    assert message["Subject"] == "hola"


def test_names_sort_newest_first_and_only_the_sinks_names_resolve(tmp_path):
    first = store_message(tmp_path, b"Subject: 1\r\n\r\n", mail_from="a@x", rcpt_tos=["b@x"])
    second = store_message(tmp_path, b"Subject: 2\r\n\r\n", mail_from="a@x", rcpt_tos=["b@x"])
    (tmp_path / "notes.txt").write_text("not mail")
    assert message_names(tmp_path) == [second.name, first.name]
    assert message_path(tmp_path, first.name) == first.resolve()
    for name in ("notes.txt", "../" + first.name, first.name.replace(".eml", ".txt"), ""):
        assert message_path(tmp_path, name) is None
    assert message_names(tmp_path / "missing") == []


def test_the_sink_receives_the_platforms_email_over_smtp(tmp_path, settings):
    port = free_port()
    controller = start_sink(tmp_path, port=port)
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
        send_email(
            OutgoingEmail(
                to="begona@example.cl",
                subject="Tu pedido llegó ✅",
                text="Hola Begoña",
                html="<p>Hola <b>Begoña</b></p>",
                from_email="Demo <noreply@example.cl>",
                idempotency_key="sink-1",
            )
        )
    finally:
        controller.stop()
    [name] = message_names(tmp_path)
    message = parse(tmp_path / name)
    assert message["Subject"] == "Tu pedido llegó ✅"
    assert message["X-Original-To"] == "begona@example.cl"
    assert message.get_body(preferencelist=("html",)).get_content().strip() == (
        "<p>Hola <b>Begoña</b></p>"
    )


def test_the_mail_sink_command_serves_until_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "control_tower.settings"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mail_sink", "--port", str(port), "--dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().startswith(f"Mail sink listening on 127.0.0.1:{port}")
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.sendmail(
                "noreply@example.cl",
                ["ana@example.cl"],
                b"From: noreply@example.cl\r\nTo: ana@example.cl\r\nSubject: hola\r\n\r\nhi\r\n",
            )
        assert wait_for(lambda: len(message_names(tmp_path)) == 1, timeout=5)
        assert parse(tmp_path / message_names(tmp_path)[0])["Subject"] == "hola"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("mail_sink did not stop on SIGTERM")
    assert process.returncode == 0, process.stderr.read()
    assert "Mail sink stopped." in process.stdout.read()
    # Nothing listens any more.
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
