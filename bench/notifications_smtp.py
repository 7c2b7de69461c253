"""Notification e-mail through the SMTP backend: messages per second to a local SMTP sink.

    .venv/bin/python bench/notifications_smtp.py            # 2,000 messages per mode
    .venv/bin/python bench/notifications_smtp.py --n 300    # a quick look

The sink is the demo's own (`manage.py mail_sink`, aiosmtpd, one .eml file per message with an
fsync) in a subprocess, so sender and receiver do not share a GIL. Each message is a real
notification's shape: an accented subject, a text part and a ~3 KB HTML part, Reply-To and
List-Unsubscribe headers, built and sent by `notifications.channels.email.send_email`. Two
modes: one SMTP session per message (what a lone Celery task does) and one session reused
for the batch (`open_connection()`). Every message is counted at the sink before the figures
are written.

Results: printed, and written to bench/results/notifications_smtp.json.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from notifications.channels.base import OutgoingEmail  # noqa: E402
from notifications.channels.email import (  # noqa: E402
    email_message,
    message_id,
    new_connection,
    open_connection,
    send_email,
)
from notifications.mailsink import message_names  # noqa: E402

HTML = (
    "<!doctype html><html><body style='font-family:sans-serif'>"
    "<h1 style='color:#1f6feb'>Tu pedido está en camino</h1>"
    + "<p>Hola Begoña: tu conductor, Ñico, llega entre las 10:00 y las 10:30. "
    "Puedes seguirlo en el mapa o dejar instrucciones de entrega.</p>"
    * 18
    + "<p><a href='https://ct.example.com/t/abc'>Seguir mi pedido</a></p></body></html>"
)
TEXT = (
    "Hola Begoña: tu conductor llega entre las 10:00 y las 10:30.\nhttps://ct.example.com/t/abc\n"
)


def notification(i: int, run: str) -> OutgoingEmail:
    return OutgoingEmail(
        to=f"cliente{i}@example.cl",
        subject="Tu pedido llega hoy entre 10:00 y 10:30 — síguelo aquí",
        text=TEXT,
        html=HTML,
        from_email="Logística Demo <noreply@example.cl>",
        idempotency_key=f"bench-{run}-{i}",
        reply_to=("soporte@example.cl",),
        headers={
            "List-Unsubscribe": "<https://ct.example.com/n/unsubscribe/token/>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sink(directory: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mail_sink", "--port", str(port), "--dir", str(directory)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if "listening" not in line:
        process.kill()
        sys.exit(f"the mail sink did not start: {line!r}")
    return process


def run(n: int, label: str, *, reuse: bool) -> tuple[float, list[float]]:
    """Send n messages; returns (seconds, per-message latencies in ms)."""
    latencies = []
    started = time.perf_counter()
    if reuse:
        with open_connection() as connection:
            for i in range(n):
                t0 = time.perf_counter()
                send_email(notification(i, label), connection=connection)
                latencies.append((time.perf_counter() - t0) * 1000)
    else:
        for i in range(n):
            t0 = time.perf_counter()
            send_email(notification(i, label))
            latencies.append((time.perf_counter() - t0) * 1000)
    return time.perf_counter() - started, latencies


def build_only(n: int) -> float:
    """Seconds to build and serialize n messages without sending (the sender's CPU share)."""
    connection = new_connection()
    started = time.perf_counter()
    for i in range(n):
        message = notification(i, "build")
        email_message(message, message_id(message.idempotency_key), connection).message().as_bytes()
    return time.perf_counter() - started


def wait_for_count(directory: Path, expected: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    count = len(message_names(directory))
    while count < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        count = len(message_names(directory))
    return count


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="messages per mode")
    parser.add_argument("--warmup", type=int, default=50)
    args, _ = parser.parse_known_args()  # `make bench` passes every script the same flags

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
        directory = Path(tmp)
        sink = start_sink(directory, port)
        try:
            settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
            settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
            settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
            settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
            run(args.warmup, "warmup", reuse=True)
            print(f"one session per message: {args.n} messages …", flush=True)
            single_s, single_ms = run(args.n, "single", reuse=False)
            print(f"one reused session: {args.n} messages …", flush=True)
            reused_s, reused_ms = run(args.n, "reused", reuse=True)
            build_s = build_only(args.n)
            expected = args.warmup + 2 * args.n
            received = wait_for_count(directory, expected)
            message_bytes = (directory / message_names(directory)[0]).stat().st_size
        finally:
            sink.terminate()
            sink.wait(timeout=10)
    if received != expected:
        sys.exit(f"the sink stored {received} of {expected} messages")
    write_results(
        "notifications_smtp",
        {
            "smtp_messages": args.n,
            "smtp_message_bytes": message_bytes,
            "smtp_messages_per_s_connection_per_message": round(args.n / single_s, 1),
            "smtp_messages_per_s_reused_connection": round(args.n / reused_s, 1),
            "smtp_send_p50_ms_connection_per_message": round(statistics.median(single_ms), 2),
            "smtp_send_p99_ms_connection_per_message": round(percentile(single_ms, 0.99), 2),
            "smtp_send_p50_ms_reused_connection": round(statistics.median(reused_ms), 2),
            "smtp_send_p99_ms_reused_connection": round(percentile(reused_ms, 0.99), 2),
            "smtp_build_ms_per_message": round(build_s * 1000 / args.n, 3),
            "smtp_messages_stored_by_sink": received,
            "smtp_sink": "manage.py mail_sink (aiosmtpd subprocess, one fsynced .eml per message)",
        },
    )


if __name__ == "__main__":
    main()
