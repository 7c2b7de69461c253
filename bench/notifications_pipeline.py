"""Notifications end to end: events → notification rows → sent over SMTP and the console SMS
backend, measured per stage.

    .venv/bin/python bench/notifications_pipeline.py                  # 500 shipments, batch
    .venv/bin/python bench/notifications_pipeline.py --n 200 --mode task

A scratch organization (`bench-notifications`, quiet hours off; its messages and events are
deleted at the end; its shipments stay, their custody chain being append-only) gets N
shipments with valid e-mails and phones through `shipments_bulk_create` (which emits
`shipment.created`), each then moved to out_for_delivery with `shipment_transition`: 3
messages per shipment (the created e-mail, the out-for-delivery e-mail and SMS). Then, in this
process, one stage after the other:

(a) the relay (`relay_pending`, what the relay task runs): events → notification rows;
(b) sending, as one worker process does it, calling the same functions the Celery tasks call
    (in-process, no broker hop): `--mode task` runs `notifications.tasks.send` once per
    message, in id order (a worker draining the per-message tasks the relay queued);
    `--mode batch` does the same, but each task sends up to NOTIFICATIONS_SEND_BATCH due
    messages of its organization on one SMTP session (later tasks for those find them sent).

E-mail goes to aiosmtpd's discarding `Sink` in a subprocess; SMS to the console backend's file
in /tmp. Latency: from the event's emission (the outbox row's `created_at`) to `sent_at`; in
this burst every message waits for the whole relay stage and the messages before it, so it is
the backlog's drain time, not a paced figure. Queries per message are counted on a separate
sample (DEBUG statements are not logged in the timed runs).

Results: printed, and written to bench/results/notifications_pipeline.json
(`--results-name` to keep a "before" run apart).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import time as clock
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret")
os.environ["DEBUG"] = "0"  # as in production: DEBUG logs every statement

import django  # noqa: E402

django.setup()

from celery import current_app  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.notifications_smtp import free_port, start_discarding_sink, stopped  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from control_tower.events.models import OutboxEvent, OutboxReceipt  # noqa: E402
from control_tower.events.relay import relay_pending  # noqa: E402
from control_tower.models import Organization  # noqa: E402
from control_tower.tenancy.actors import Actor  # noqa: E402
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope  # noqa: E402
from notifications import tasks  # noqa: E402
from notifications.channels.registry import reset_backends  # noqa: E402
from notifications.models import Notification, NotificationLog, Status  # noqa: E402
from notifications.policy import settings_for  # noqa: E402
from tracking.models import Shipment  # noqa: E402, TC002
from tracking.services.shipments import shipment_transition, shipments_bulk_create  # noqa: E402

SLUG = "bench-notifications"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def scratch_organization() -> Organization:
    organization, _ = Organization.objects.get_or_create(
        slug=SLUG, defaults={"name": "Bench notifications", "time_zone": "America/Santiago"}
    )
    clean(organization)
    with organization_scope(organization):
        options = settings_for(organization)
        options.quiet_hours_start = options.quiet_hours_end = clock(0, 0)  # quiet hours off
        options.rate_limit_per_hour = options.rate_limit_per_day = 1000
        options.save()
    return organization


def clean(organization: Organization) -> None:
    with dangerously_all_organizations():
        NotificationLog.dangerously_unscoped.filter(organization=organization).delete()
        Notification.dangerously_unscoped.filter(organization=organization).delete()
        events = OutboxEvent.dangerously_unscoped.filter(organization=organization)
        OutboxReceipt.objects.filter(event__in=events).delete()
        events.delete()
    # Shipments stay: their custody chain is append-only (a database trigger refuses DELETE).


def create_shipments(organization: Organization, n: int, run: str) -> list[Shipment]:
    actor = Actor(organization=organization)
    items = [
        {
            "reference": f"NB-{run}-{i}",
            "barcode": f"NB-{run}-{i}",
            "recipient_name": "Begoña Pérez",
            "recipient_email": f"cliente{i}@example.cl",
            "recipient_phone": f"+569{50000000 + i}",
            "address_line1": "Avenida del Mar 1",
            "city": "La Serena",
            "country_code": "CL",
        }
        for i in range(n)
    ]
    with organization_scope(organization):
        shipments = []
        for start in range(0, n, 200):
            shipments += shipments_bulk_create(actor=actor, items=items[start : start + 200])
        for shipment in shipments:
            shipment_transition(shipment=shipment, to_status="out_for_delivery", actor=actor)
    return shipments


def queued(organization: Organization) -> list[int]:
    with organization_scope(organization):
        return list(
            Notification.objects.filter(status=Status.QUEUED)
            .order_by("id")
            .values_list("pk", flat=True)
        )


def send_all(organization: Organization, ids: list[int]) -> None:
    for pk in ids:
        tasks.send(notification_id=pk, organization_id=organization.pk)


def queries_per_message(organization: Organization, mode: str, sample: int) -> float:
    """Statements per message for `sample` shipments' messages (created, relayed, then counted
    while sent)."""
    create_shipments(organization, sample, f"q{time.time_ns()}")
    relay_pending(budget_s=60)
    ids = queued(organization)
    with CaptureQueriesContext(connection) as captured:
        send_all(organization, ids)
    return round(len(captured.captured_queries) / max(len(ids), 1), 1)


def measure(organization: Organization, n: int) -> dict:
    started = time.perf_counter()
    shipments = create_shipments(organization, n, f"r{time.time_ns()}")
    setup_s = time.perf_counter() - started
    print(f"  {len(shipments)} shipments created and out for delivery in {setup_s:.1f} s")

    started = time.perf_counter()
    events = relay_pending(budget_s=600)
    relay_s = time.perf_counter() - started
    with organization_scope(organization):
        rows = Notification.objects.count()
    ids = queued(organization)
    print(f"  relay: {events} events → {rows} rows ({len(ids)} queued) in {relay_s:.1f} s")

    cpu0, started = time.process_time(), time.perf_counter()
    send_all(organization, ids)
    send_s, send_cpu_s = time.perf_counter() - started, time.process_time() - cpu0
    with organization_scope(organization):
        done = list(
            Notification.objects.filter(pk__in=ids, sent_at__isnull=False).values_list(
                "sent_at", "source_event_id"
            )
        )
        emitted = dict(
            OutboxEvent.dangerously_unscoped.filter(organization=organization).values_list(
                "event_id", "created_at"
            )
        )
    if len(done) != len(ids):
        sys.exit(f"only {len(done)} of {len(ids)} messages were sent")
    latencies = [(sent - emitted[event]).total_seconds() * 1000 for sent, event in done]
    return {
        "events": events,
        "rows": rows,
        "sent": len(done),
        "relay_s": relay_s,
        "send_s": send_s,
        "send_cpu_s": send_cpu_s,
        "latencies": latencies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="shipments (3 messages each)")
    parser.add_argument("--mode", choices=["task", "batch"], default="batch")
    parser.add_argument("--batch", type=int, default=50, help="NOTIFICATIONS_SEND_BATCH")
    parser.add_argument("--query-sample", type=int, default=20, help="shipments")
    parser.add_argument("--results-name", default="notifications_pipeline")
    args, _ = parser.parse_known_args()  # `make bench` passes every script the same flags
    logging.getLogger("notifications.channels.console").setLevel(logging.WARNING)  # a line per SMS

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.PUBLIC_BASE_URL = settings.PUBLIC_BASE_URL or "https://ct.example.com"
    settings.NOTIFICATIONS_SMS_BACKEND = "notifications.channels.console.ConsoleSmsBackend"
    settings.NOTIFICATIONS_SEND_BATCH = args.batch if args.mode == "batch" else 1
    sms_dir = tempfile.TemporaryDirectory(prefix="bench-sms-")
    settings.NOTIFICATIONS_SMS_FILE = str(Path(sms_dir.name) / "sms.jsonl")
    reset_backends()

    organization = scratch_organization()
    port = free_port()
    sink = start_discarding_sink(port)
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    try:
        print(f"mode {args.mode}: {args.n} shipments", flush=True)
        figures = measure(organization, args.n)
        clean(organization)
        per_message_queries = queries_per_message(organization, args.mode, args.query_sample)
        sms_lines = len(Path(settings.NOTIFICATIONS_SMS_FILE).read_text().splitlines())
    finally:
        stopped(sink)
        clean(organization)
        current_app.control.purge()  # the per-message tasks the relay queued (no worker here)
        sms_dir.cleanup()

    latencies = figures["latencies"]
    write_results(
        args.results_name,
        {
            "notifications_mode": args.mode,
            "notifications_send_batch": settings.NOTIFICATIONS_SEND_BATCH,
            "notifications_shipments": args.n,
            "notifications_events_relayed": figures["events"],
            "notification_rows": figures["rows"],
            "notification_rows_per_s": round(figures["rows"] / figures["relay_s"], 1),
            "notifications_relay_s": round(figures["relay_s"], 2),
            "notifications_sent": figures["sent"],
            "notifications_sms_lines_written": sms_lines,
            "notifications_sent_per_s": round(figures["sent"] / figures["send_s"], 1),
            "notifications_send_s": round(figures["send_s"], 2),
            "notifications_send_cpu_share": round(figures["send_cpu_s"] / figures["send_s"], 2),
            "notification_queries_per_message": per_message_queries,
            "notification_event_to_sent_p50_ms": round(statistics.median(latencies), 1),
            "notification_event_to_sent_p99_ms": round(percentile(latencies, 0.99), 1),
            "notifications_worker": "in-process, the Celery task functions, 1 process",
        },
    )


if __name__ == "__main__":
    main()
