"""`manage.py evaluate_exceptions --org demo --days 1`: the exception rules against the truth."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.core.management.base import CommandError

from bench.results_file import write_results
from control_tower.tenancy.commands import OrganizationCommand
from control_tower.tenancy.scope import organization_scope
from exceptions.evaluation import play_day, score, table, write_detail
from tracking.models import Route, RouteStatus
from tracking.simulation.demo import DEMO_SLUG, plan_unplayed_day
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
        parser.add_argument(
            "--world",
            choices=("simple", "rich"),
            default="simple",
            help="The hidden world (default simple: the world docs/EXCEPTIONS_EVALUATION.md "
            "measured).",
        )
        parser.add_argument("--step", type=int, default=30, help="Simulated seconds per step.")
        parser.add_argument(
            "--eta-every", type=int, default=300, help="Simulated seconds between ETA updates."
        )
        parser.add_argument(
            "--plan-shipments",
            type=int,
            default=0,
            help="Demo organization only: first plan --days fresh past days of this many "
            "shipments (the days just before its oldest routes), then play them.",
        )
        parser.add_argument(
            "--detail", help="Also write every truth and every alert seen (JSON lines) here."
        )
        parser.add_argument(
            "--json",
            default="exceptions",
            help="Write the figures to this file under bench/results/ ('' for none).",
        )

    def handle_in_organization(self, organization, *args, **options):
        today = datetime.now(ZoneInfo(organization.time_zone)).date()
        if options["plan_shipments"]:
            if organization.slug != DEMO_SLUG:
                raise CommandError("--plan-shipments plans demo days: use --org demo.")
            with organization_scope(organization):
                oldest = Route.objects.order_by("date").values_list("date", flat=True).first()
            # Two days clear of anything else: the sweep looks at routes of "today" give or
            # take a day, and today's demo routes share the drivers' phones.
            oldest = min(oldest or today, today - timedelta(days=2))
            for back in range(options["days"], 0, -1):
                plan_unplayed_day(oldest - timedelta(days=back), options["plan_shipments"])
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
        world = World(WorldConfig(kind=options["world"], seed=options["seed"]))
        runs, began = [], time.monotonic()
        for day in sorted(days):
            run = play_day(
                organization, day, world, step_s=options["step"], eta_every_s=options["eta_every"]
            )
            self.stdout.write(
                f"{day}: {run.steps} steps, {len(run.truths)} truths, {len(run.alerts)} alerts"
            )
            runs.append(run)
        if options["detail"]:
            write_detail(Path(options["detail"]), runs)
        results = score(organization, runs)
        results["seed"] = options["seed"]
        results["wall_s"] = round(time.monotonic() - began, 1)
        self.stdout.write(table(results))
        if options["json"]:
            write_results(options["json"], results)
