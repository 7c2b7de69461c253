"""`manage.py mail_sink`: the demo's SMTP sink, in the foreground until stopped (Ctrl-C or
SIGTERM). See notifications/mailsink.py."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifications.mailsink import start_sink


class Command(BaseCommand):
    help = "Receive e-mail over SMTP and keep each message as an .eml file (development, demo)."
    requires_system_checks: list = []  # runs beside the demo; needs no database

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=1025)
        parser.add_argument(
            "--dir",
            default=getattr(settings, "NOTIFICATIONS_MAIL_VIEWER_DIR", "") or "var/mail",
            help="The folder the messages go to (the mail viewer's NOTIFICATIONS_MAIL_VIEWER_DIR).",
        )

    def handle(self, *args, host, port, dir, **options):  # noqa: A002 - the option's name
        directory = Path(dir).resolve()
        if options["verbosity"] < 2:  # aiosmtpd logs every SMTP command at INFO
            logging.getLogger("mail.log").setLevel(logging.WARNING)
        stop = threading.Event()
        # Stop cleanly on SIGTERM (make demo, process managers) as on Ctrl-C.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            controller = start_sink(directory, host=host, port=port)
        except (OSError, RuntimeError) as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc
        self.stdout.write(f"Mail sink listening on {host}:{port}, writing to {directory}")
        self.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            controller.stop()
        self.stdout.write("Mail sink stopped.")
