"""Print what distributing the schema by organization_id with Citus would take (docs/SCALING.md)."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from control_tower import citus_readiness


class Command(BaseCommand):
    help = (
        "Report, per table, what Citus distribution by organization_id requires (primary key, "
        "unique constraints, foreign keys), read from this database's catalog."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="Also compare with the recorded baseline; exit non-zero if a table got worse "
            "or a new table breaks a rule every recorded table keeps.",
        )
        parser.add_argument(
            "--write-baseline",
            action="store_true",
            help=f"Record today's state in {citus_readiness.BASELINE_PATH} (after a reviewed "
            "schema change that knowingly adds a table to the to-do list).",
        )

    def handle(self, *args, **options):
        reports = citus_readiness.read_schema(connection)
        self.stdout.write(citus_readiness.render(reports))
        if options["write_baseline"]:
            path = citus_readiness.BASELINE_PATH
            previous = citus_readiness.load_baseline() if path.exists() else None
            baseline = citus_readiness.baseline_of(reports, previous)
            citus_readiness.write_baseline(baseline)
            self.stdout.write(f"baseline written: {citus_readiness.BASELINE_PATH}")
        if options["check"]:
            problems = citus_readiness.regressions(reports, citus_readiness.load_baseline())
            if problems:
                raise CommandError("\n".join(["Citus readiness got worse:", *problems]))
            self.stdout.write("no table is less ready than the baseline")
