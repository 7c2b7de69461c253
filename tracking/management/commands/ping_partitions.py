"""`manage.py ping_partitions`: the same upkeep as the hourly beat task, on demand."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tracking.ingest.partitions import existing_partitions, maintain_ping_partitions


class Command(BaseCommand):
    help = "Create ping partitions ahead and apply each organization's ping retention."

    def add_arguments(self, parser):
        parser.add_argument("--list", action="store_true", help="Only list the partitions.")

    def handle(self, *args, **options):
        if not options["list"]:
            result = maintain_ping_partitions()
            self.stdout.write(
                f"created {len(result['created'])} partition(s) {result['created']}, "
                f"dropped {len(result['dropped'])} {result['dropped']}, "
                f"deleted {result['deleted_rows']} expired row(s)"
            )
        days = sorted(existing_partitions())
        if days:
            self.stdout.write(f"{len(days)} daily partitions: {days[0]} … {days[-1]}")
        else:
            self.stdout.write("no daily partitions (everything goes to the default partition)")
