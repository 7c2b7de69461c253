"""`manage.py evaluate_eta --org demo --last 3`: ETA accuracy on held-out days vs baselines."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.core.management.base import CommandError

from bench.results_file import write_results
from control_tower.tenancy.commands import OrganizationCommand
from tracking.eta.calibration import DEFAULT_DAYS, calibration_buckets
from tracking.eta.evaluation import evaluate_days, markdown_table
from tracking.eta.factors import LearnedTimes
from tracking.eta.learned import as_offsets
from tracking.eta.learning import (
    LearnedEstimator,
    dwell_factor,
    history,
    train,
    training_rows,
    travel_by_hour,
)
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
        parser.add_argument(
            "--world",
            choices=["rich", "simple"],
            default="rich",
            help="The kind of hidden world that drives the held-out days (as the history's).",
        )
        parser.add_argument("--step", type=int, default=300, help="Seconds between predictions.")
        parser.add_argument(
            "--json",
            help="Also write the figures (flat keys, unit in the name) to this JSON file "
            "under bench/results/.",
        )
        parser.add_argument(
            "--train-days",
            type=int,
            default=28,
            help="History before the held-out days to train on.",
        )
        parser.add_argument(
            "--calibration-days",
            type=int,
            default=DEFAULT_DAYS,
            help="History before the held-out days replayed to calibrate the live windows.",
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
        first = min(days)
        # Everything learned comes from the days before the held-out ones (time split).
        model = train(organization, until=first, days=options["train_days"])
        learned = LearnedEstimator.of(model) if model is not None else None
        if model is None:
            self.stdout.write("not enough history before the held-out days: no learned model")
        else:
            self.stdout.write(
                f"learned model v{model.version}: {model.legs} legs, {model.dwells} dwells, "
                f"trained on {model.trained_from} to {model.trained_until} (excluded)"
            )
        since = first - timedelta(days=options["train_days"])
        times = None
        if model is not None:
            hourly, dwell = model.travel_by_hour, model.dwell_factor
            times = LearnedTimes.of(model.version, model.factors)
        else:  # too few dwells for the regressors; the legs may still give hourly factors
            legs_x, legs_y, _dx, _dy = training_rows(
                *history(organization, since=since, until=first)
            )
            hourly = travel_by_hour(legs_x, legs_y)
            dwell = dwell_factor(organization, since=since, until=first)
        calibration_args = {
            "until": first,
            "days": options["calibration_days"],
            "travel_by_hour": hourly or None,
            "dwell_factor": dwell,
        }
        by_hour_buckets = calibration_buckets(organization, **calibration_args)
        buckets = calibration_buckets(organization, **calibration_args, times=times)
        self.stdout.write(
            f"live: learned tables {'v' + str(times.version) if times else 'none'}; by_hour: "
            f"travel factors for {len(hourly)} hours, dwell factor {dwell}; windows "
            f"calibrated on the {options['calibration_days']} days before {first} "
            f"({sum(b['n'] for b in buckets.values())} replayed predictions)"
        )
        results = evaluate_days(
            organization,
            sorted(days),
            World(WorldConfig(kind=options["world"], seed=options["seed"])),
            step_s=options["step"],
            learned=learned,
            travel_by_hour=hourly or None,
            dwell_factor=dwell,
            calibration=as_offsets(by_hour_buckets) or None,
            live_calibration=as_offsets(buckets) or None,
            times=times,
        )
        elapsed = time.perf_counter() - started
        self.stdout.write(
            f"held-out days: {', '.join(map(str, sorted(days)))}; "
            f"world seed {options['seed']}; {elapsed:.1f} s"
        )
        self.stdout.write(markdown_table(results))
        for key, value in ratios(results).items():
            self.stdout.write(f"{key}: {value}")
        if options["json"]:
            flat = {
                "held_out_days": ",".join(map(str, sorted(days))),
                "world": options["world"],
                "world_seed": options["seed"],
                "train_days": options["train_days"],
                "calibration_days": options["calibration_days"],
                "step_s": options["step"],
                "run_time_s": round(elapsed, 1),
            }
            for method, by_bucket in results.items():
                for bucket, row in by_bucket.items():
                    name = bucket.replace("-", "_to_").replace("+", "_plus")
                    for key, value in row.items():
                        key = "predictions" if key == "n" else key
                        flat[f"{method}_{name}_min_ahead_{key}"] = value
            flat.update(ratios(results))
            write_results(Path(options["json"]).stem, flat)


def ratios(results: dict) -> dict:
    """The issue's yardsticks per horizon: live MAE over the oracle's, and live's change
    against free flow and the static plan (negative: better)."""
    out = {}
    for bucket, live in results["live"].items():
        if not live.get("n"):
            continue
        name = bucket.replace("-", "_to_").replace("+", "_plus")
        oracle = results["oracle"][bucket]["mae_min"]
        out[f"live_to_oracle_{name}_min_ahead_mae_ratio"] = round(live["mae_min"] / oracle, 3)
        for other in ("free_flow", "static_plan"):
            mae = results[other][bucket].get("mae_min")
            if mae:
                change = round(100 * (live["mae_min"] / mae - 1), 1)
                out[f"live_vs_{other}_{name}_min_ahead_mae_change_pct"] = change
    return out
