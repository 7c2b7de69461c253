"""`manage.py webhook_receiver --port 8099 --secret whsec_...`: a local receiver for the demo.
It verifies each delivery's signature and prints one line per request. Secrets are shown only
once (on creation or rotation), so the command takes them as arguments, never from the
database: create the endpoint, copy its secret, start the receiver with it."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand

from webhooks.receiver import Receiver


class Command(BaseCommand):
    help = "Run a local webhook receiver that verifies Standard Webhooks signatures."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8099)
        parser.add_argument(
            "--secret",
            action="append",
            default=[],
            help="whsec_… (repeat during a rotation to accept both secrets).",
        )
        parser.add_argument(
            "--secret-file",
            action="append",
            default=[],
            help="A file holding a whsec_… secret (keeps it out of the process list).",
        )
        parser.add_argument("--fail-first", type=int, default=0, help="Answer 500 to N first.")

    def handle(self, *args, **options):
        def show(record):
            mark = "verified" if record.verified else "SIGNATURE NOT VERIFIED"
            self.stdout.write(
                f"{record.answered} {record.message_id} {record.event_type} "
                f"{record.aggregate} {mark}"
            )
            self.stdout.flush()

        secrets = list(options["secret"])
        for name in options["secret_file"]:
            secrets.append(Path(name).read_text().strip())
        receiver = Receiver(
            secrets=secrets,
            host=options["host"],
            port=options["port"],
            verify=bool(secrets),
            on_receive=show,
        )
        receiver.fail_next = options["fail_first"]
        receiver.start()
        self.stdout.write(f"listening on http://{options['host']}:{receiver.port}/hooks")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            receiver.stop()
