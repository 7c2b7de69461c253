"""Notification e-mail through the SMTP backend: messages per second to a local SMTP sink.

    .venv/bin/python bench/notifications_smtp.py            # 2,000 messages per mode
    .venv/bin/python bench/notifications_smtp.py --n 300    # a quick look

Two sinks, each in a subprocess so sender and receiver do not share a GIL: aiosmtpd's own
`Sink` handler, which accepts and discards (the figures of the platform's side: building the
message and the SMTP dialogue), and the demo's `manage.py mail_sink`, which fsyncs one .eml
file per message (what `make demo` runs; every message is counted in its folder). Each message
is a real notification's shape: an accented subject, a text part and a ~3 KB HTML part,
Reply-To and List-Unsubscribe headers, built and sent by
`notifications.channels.email.send_email`. Two modes per sink: one SMTP session per message
(what a lone Celery task does) and one session reused for the batch (`open_connection()`).

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


def start_discarding_sink(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
        + ["-l", f"127.0.0.1:{port}"],
        cwd=ROOT,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit("the discarding SMTP sink did not start")


def start_file_sink(directory: Path, port: int) -> subprocess.Popen:
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


def measure(n: int, warmup: int, port: int) -> dict:
    """Both modes against the sink listening on `port`."""
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    run(warmup, "warmup", reuse=True)
    print(f"  one session per message: {n} messages …", flush=True)
    single_s, single_ms = run(n, "single", reuse=False)
    print(f"  one reused session: {n} messages …", flush=True)
    reused_s, reused_ms = run(n, "reused", reuse=True)
    return {
        "per_message": round(n / single_s, 1),
        "reused": round(n / reused_s, 1),
        "per_message_p50": round(statistics.median(single_ms), 2),
        "per_message_p99": round(percentile(single_ms, 0.99), 2),
        "reused_p50": round(statistics.median(reused_ms), 2),
        "reused_p99": round(percentile(reused_ms, 0.99), 2),
    }


def stopped(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="messages per mode and sink")
    parser.add_argument("--warmup", type=int, default=50)
    args, _ = parser.parse_known_args()  # `make bench` passes every script the same flags

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""

    print("sink: aiosmtpd.handlers.Sink (accepts and discards)", flush=True)
    port = free_port()
    sink = start_discarding_sink(port)
    try:
        discard = measure(args.n, args.warmup, port)
    finally:
        stopped(sink)

    print("sink: manage.py mail_sink (one fsynced .eml per message)", flush=True)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
        directory = Path(tmp)
        sink = start_file_sink(directory, port)
        try:
            files = measure(args.n, args.warmup, port)
            build_s = build_only(args.n)
            expected = args.warmup + 2 * args.n
            received = wait_for_count(directory, expected)
            message_bytes = (directory / message_names(directory)[0]).stat().st_size
        finally:
            stopped(sink)
    if received != expected:
        sys.exit(f"the file sink stored {received} of {expected} messages")
    write_results(
        "notifications_smtp",
        {
            "smtp_messages": args.n,
            "smtp_message_bytes": message_bytes,
            "smtp_build_ms_per_message": round(build_s * 1000 / args.n, 3),
            "smtp_messages_per_s_connection_per_message": discard["per_message"],
            "smtp_messages_per_s_reused_connection": discard["reused"],
            "smtp_send_p50_ms_connection_per_message": discard["per_message_p50"],
            "smtp_send_p99_ms_connection_per_message": discard["per_message_p99"],
            "smtp_send_p50_ms_reused_connection": discard["reused_p50"],
            "smtp_send_p99_ms_reused_connection": discard["reused_p99"],
            "smtp_messages_per_s_connection_per_message_file_sink": files["per_message"],
            "smtp_messages_per_s_reused_connection_file_sink": files["reused"],
            "smtp_send_p50_ms_reused_connection_file_sink": files["reused_p50"],
            "smtp_send_p99_ms_reused_connection_file_sink": files["reused_p99"],
            "smtp_messages_stored_by_file_sink": received,
        },
    )


if __name__ == "__main__":
    main()
