"""`manage.py evaluate_exceptions --org demo --days 1`: the exception rules against the truth."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from django.core.management.base import CommandError

from bench.results_file import write_results
from control_tower.tenancy.commands import OrganizationCommand
from control_tower.tenancy.scope import organization_scope
from exceptions.evaluation import play_day, score, table
from tracking.models import Route, RouteStatus
from tracking.simulation.world import World, WorldConfig


class Command(OrganizationCommand):
    help = (
        "Play the organization's last N past days that still have planned routes with the live "
        "exception rules at simulated time, and score the alerts against the simulator's truth."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--days", type=int, default=1, help="How many planned past days.")
        parser.add_argument("--seed", type=int, default=42, help="The world's seed.")
        parser.add_argument("--step", type=int, default=30, help="Simulated seconds per step.")
        parser.add_argument(
            "--eta-every", type=int, default=300, help="Simulated seconds between ETA updates."
        )
        parser.add_argument(
            "--json",
            default="exceptions",
            help="Write the figures to this file under bench/results/ ('' for none).",
        )

    def handle_in_organization(self, organization, *args, **options):
        today = datetime.now(ZoneInfo(organization.time_zone)).date()
        with organization_scope(organization):
            days = list(
                Route.objects.filter(date__lt=today, status=RouteStatus.PLANNED)
                .order_by("-date")
                .values_list("date", flat=True)
                .distinct()[: options["days"]]
            )
        if not days:
            raise CommandError(
                "No past day with planned routes: plan one first, e.g. "
                "`manage.py load_demo --date YYYY-MM-DD` (a day before today)."
            )
        world = World(WorldConfig(seed=options["seed"]))
        runs, began = [], time.monotonic()
        for day in sorted(days):
            run = play_day(
                organization, day, world, step_s=options["step"], eta_every_s=options["eta_every"]
            )
            self.stdout.write(
                f"{day}: {run.steps} steps, {len(run.truths)} truths, {len(run.alerts)} alerts"
            )
            runs.append(run)
        results = score(organization, runs)
        results["seed"] = options["seed"]
        results["wall_s"] = round(time.monotonic() - began, 1)
        self.stdout.write(table(results))
        if options["json"]:
            write_results(options["json"], results)
