"""`manage.py simulate_fleet --org demo`: drive today's routes on the real roads, live."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import CommandError

from control_tower.tenancy.commands import OrganizationCommand
from tracking.simulation.history import replay_day
from tracking.simulation.runner import Simulation
from tracking.simulation.world import World, WorldConfig


class Command(OrganizationCommand):
    help = (
        "Drive an organization's planned routes of a day on the road network and report "
        "through the public ingest endpoints like real phones (pings, scans, proofs of "
        "delivery). Writes the ground truth to a JSON-lines file."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--date", help="Service day (default: today in the org's zone).")
        parser.add_argument("--start", help="Virtual start, ISO-8601 (default: now).")
        parser.add_argument(
            "--speedup",
            type=float,
            default=1.0,
            help="Catch up from a past --start this many times faster.",
        )
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--world",
            choices=("rich", "simple"),
            default="rich",
            help="The hidden world (default rich, as load_demo's; docs/SIMULATION.md).",
        )
        parser.add_argument("--interval", type=int, default=5, help="Seconds between fixes.")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--truth", help="Ground-truth file (default var/simulation/...).")
        parser.add_argument("--max-events", type=int, help="Stop after this many events.")
        parser.add_argument(
            "--history",
            type=int,
            metavar="DAYS",
            help="Instead of driving live: play out the planned routes of the past DAYS days "
            "through the services, at the times the world says (no HTTP, no pings).",
        )
        parser.add_argument(
            "--linger",
            action="store_true",
            help="Stay alive when the routes are done (for make demo).",
        )
        parser.add_argument(
            "--truth-only",
            action="store_true",
            help="Compute and write the ground truth, send nothing.",
        )

    def handle_in_organization(self, organization, *args, **options):
        logging.getLogger("httpx").setLevel(logging.WARNING)
        zone = ZoneInfo(organization.time_zone)
        try:
            day = (
                date.fromisoformat(options["date"])
                if options["date"]
                else datetime.now(zone).date()
            )
            start = (
                datetime.fromisoformat(options["start"])
                if options["start"]
                else (datetime.now(UTC))
            )
        except ValueError as exc:
            raise CommandError(f"Use ISO-8601 for --date/--start: {exc}") from exc
        if start.tzinfo is None:
            start = start.replace(tzinfo=zone)
        if options["interval"] < 1:
            raise CommandError("--interval must be at least 1 second.")
        if options["history"] is not None:
            return self._history(organization, day, options)
        truth = Path(
            options["truth"]
            or Path(settings.BASE_DIR)
            / "var"
            / "simulation"
            / f"{organization.slug}-{day}-seed{options['seed']}.jsonl"
        )
        simulation = Simulation(
            organization,
            day=day,
            start=start,
            config=WorldConfig(kind=options["world"], seed=options["seed"]),
            base_url=options["base_url"],
            speedup=options["speedup"],
            interval_s=options["interval"],
            truth_path=truth,
            log=self.stdout.write,
        )
        if options["truth_only"]:
            simulation.compute()
            self.stdout.write(f"ground truth: {truth}")
            return
        self.stdout.write(
            f"simulating {organization.slug} {day} from {start.isoformat()} "
            f"(seed {options['seed']}, speedup {options['speedup']}); "
            f"ground truth: {truth}"
        )
        sent = simulation.run(max_events=options["max_events"])
        self.stdout.write(
            f"done: {len(simulation.timelines)} routes; sent {sent['pings']} fixes, "
            f"{sent['scans']} scans, {sent['pods']} proofs of delivery, {sent['failures']} "
            f"failed attempts, {sent['incidents']} incidents; {sent['errors']} errors"
        )
        while options["linger"]:
            time.sleep(3600)

    def _history(self, organization, day, options):
        if not 1 <= options["history"] <= 366:
            raise CommandError("--history must be between 1 and 366 days.")
        world = World(WorldConfig(kind=options["world"], seed=options["seed"]))
        for back in range(options["history"], 0, -1):
            past = day - timedelta(days=back)
            counts = replay_day(organization, past, world)
            self.stdout.write(
                f"{past}: {counts['routes']} routes played out, {counts['delivered']} delivered, "
                f"{counts['failed']} failed"
            )
