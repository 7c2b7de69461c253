"""`manage.py evaluate_eta --org demo --last 3`: ETA accuracy on held-out days vs baselines."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.core.management.base import CommandError

from control_tower.tenancy.commands import OrganizationCommand
from tracking.eta.evaluation import calibrate, evaluate_days, markdown_table
from tracking.eta.learning import LearnedEstimator, train
from tracking.models import Route
from tracking.simulation.world import World, WorldConfig


class Command(OrganizationCommand):
    help = (
        "Replay held-out days with the simulator's world and measure the ETAs each method would "
        "have shown (MAE, P90, within ±5/±10 min, P10–P90 coverage by horizon)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--days", help="Comma-separated YYYY-MM-DD held-out days.")
        parser.add_argument(
            "--last", type=int, default=3, help="Else: the last N days with routes before today."
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=1001,
            help="Seed of the world that drives the held-out days.",
        )
        parser.add_argument("--step", type=int, default=300, help="Seconds between predictions.")
        parser.add_argument("--json", help="Also write the figures to this JSON file.")
        parser.add_argument(
            "--train-days",
            type=int,
            default=28,
            help="History before the held-out days to train on.",
        )

    def handle_in_organization(self, organization, *args, **options):
        if options["days"]:
            try:
                days = [date.fromisoformat(d) for d in options["days"].split(",")]
            except ValueError as exc:
                raise CommandError(f"--days: {exc}") from exc
        else:
            today = datetime.now(ZoneInfo(organization.time_zone)).date()
            days = list(
                Route.objects.filter(date__lt=today)
                .order_by("-date")
                .values_list("date", flat=True)
                .distinct()[: options["last"]]
            )
        if not days:
            raise CommandError(
                "No held-out day with routes: load some history first "
                "(manage.py load_demo --history 14)."
            )
        started = time.perf_counter()
        model = train(organization, until=min(days), days=options["train_days"])
        learned = LearnedEstimator.of(model) if model is not None else None
        if model is None:
            self.stdout.write("not enough history before the held-out days: no learned model")
        else:
            self.stdout.write(
                f"learned model v{model.version}: {model.legs} legs, {model.dwells} dwells, "
                f"trained on {model.trained_from} to {model.trained_until} (excluded)"
            )
        # Windows calibrated on the week before the held-out days (never on them).
        first = min(days)
        calibration_days = list(
            Route.objects.filter(date__lt=first, date__gte=first - timedelta(days=7))
            .order_by("date")
            .values_list("date", flat=True)
            .distinct()
        )
        calibration = (
            calibrate(
                organization,
                calibration_days,
                World(WorldConfig(seed=options["seed"] + 1)),
                step_s=options["step"],
            )
            if calibration_days
            else None
        )
        results = evaluate_days(
            organization,
            sorted(days),
            World(WorldConfig(seed=options["seed"])),
            step_s=options["step"],
            learned=learned,
            calibration=calibration,
        )
        self.stdout.write(
            f"held-out days: {', '.join(map(str, sorted(days)))}; "
            f"world seed {options['seed']}; {time.perf_counter() - started:.1f} s"
        )
        self.stdout.write(markdown_table(results))
        if options["json"]:
            Path(options["json"]).write_text(
                json.dumps({"days": [str(d) for d in sorted(days)], "results": results}, indent=2)
                + "\n"
            )
