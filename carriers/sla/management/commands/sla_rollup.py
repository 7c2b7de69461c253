"""`manage.py sla_rollup --org SLUG [--from DATE --to DATE | --days N]`: rebuild SLA facts and
roll-ups of a range of service days (what `make demo` runs after loading history)."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from carriers.sla.rollup import recompute_day
from control_tower.models import Organization


class Command(BaseCommand):
    help = "Recompute SLA facts and daily roll-ups of an organization for a range of days."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--from", dest="date_from", type=dt.date.fromisoformat)
        parser.add_argument("--to", dest="date_to", type=dt.date.fromisoformat)
        parser.add_argument(
            "--days", type=int, help="The last N local days up to today (default 14)."
        )

    def handle(self, *args, org, date_from, date_to, days, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with slug {org!r}.")
        today = timezone.localtime(timezone.now(), organization.zone).date()
        if date_from or date_to:
            if days is not None:
                raise CommandError("Give either --from/--to or --days, not both.")
            date_from = date_from or date_to
            date_to = date_to or today
            if date_from > date_to:
                raise CommandError("--from must be on or before --to.")
        else:
            count = 14 if days is None else days
            if count < 1:
                raise CommandError("--days must be at least 1.")
            date_from, date_to = today - dt.timedelta(days=count - 1), today
        began = time.monotonic()
        day = date_from
        while day <= date_to:
            seconds = recompute_day(organization=organization, day=day)
            self.stdout.write(f"{day.isoformat()}  {seconds:.2f} s")
            day += dt.timedelta(days=1)
        total = (date_to - date_from).days + 1
        self.stdout.write(
            self.style.SUCCESS(
                f"{organization.slug}: {total} day(s) rolled up in {time.monotonic() - began:.2f} s"
            )
        )
