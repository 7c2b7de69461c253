"""`manage.py load_demo`: the demo tenant, one service day, and how to log in."""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from tracking.simulation.demo import DEMO_PASSWORD, PEOPLE, RIVAL_SLUG, SUPERUSER_EMAIL, load_demo


class Command(BaseCommand):
    help = (
        "Create the demo organization (Coquimbo Express) with a person per role, carriers, "
        "hubs, fleet and a day of shipments and routes. Idempotent: a day is planned once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--date", help="Service day YYYY-MM-DD (default: today in America/Santiago)."
        )
        parser.add_argument(
            "--shipments", type=int, default=150, help="Shipments for a new day (default 150)."
        )
        parser.add_argument(
            "--history",
            type=int,
            default=0,
            help="Also plan and play out this many past days (simulated history).",
        )
        parser.add_argument("--seed", type=int, default=42, help="Seed of the history's world.")
        parser.add_argument(
            "--world",
            choices=("rich", "simple"),
            default="rich",
            help="The hidden world of the history and the customers' addresses (default rich: "
            "drivers, buildings, rain, closures; docs/SIMULATION.md).",
        )
        parser.add_argument("--quiet", action="store_true", help="Print only the API key.")
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="Base URL for the printed links."
        )

    def handle(self, *args, **options):
        service_date = None
        if options["date"]:
            try:
                service_date = date.fromisoformat(options["date"])
            except ValueError as exc:
                raise CommandError(f"--date must be YYYY-MM-DD, not {options['date']!r}.") from exc
        if not 1 <= options["shipments"] <= 5000:
            raise CommandError("--shipments must be between 1 and 5000.")
        if not 0 <= options["history"] <= 90:
            raise CommandError("--history must be between 0 and 90 days.")
        report = load_demo(
            service_date=service_date,
            shipment_count=options["shipments"],
            history_days=options["history"],
            seed=options["seed"],
            world=options["world"],
        )
        if options["quiet"]:
            self.stdout.write(report.api_key)
            return
        base = options["base_url"].rstrip("/")
        org = report.organization
        day = "planned now" if report.created_day else "already planned, kept as it was"
        lines = [
            f"Demo organization: {org.name} (slug {org.slug}, time zone {org.time_zone})",
            f"Service day {report.service_date}: {report.shipments} shipments, "
            f"{report.routes} routes ({day})"
            + (
                f"; {report.history_routes} routes of history played out"
                if report.history_routes
                else ""
            ),
            "",
            f"Logins (password {DEMO_PASSWORD}) at {base}/accounts/login/ :",
            *(f"  {email:<26} {role.label}" for email, role, _c in PEOPLE),
            f"  {SUPERUSER_EMAIL:<26} superuser (admin across organizations)",
            f"  {'owner@rival.example':<26} owner of the other tenant ({RIVAL_SLUG})",
            "",
            f"API key (all scopes, shown once): {report.api_key}",
            f"  curl -H 'Authorization: Api-Key {report.api_key}' {base}/api/v1/shipments/",
            f"  curl -H 'Authorization: Api-Key {report.api_key}' {base}/api/v1/routes/"
            f"?date={report.service_date}",
        ]
        if report.device_tokens:
            lines += ["", "Device tokens (shown once, when the devices are made):"]
            lines += [f"  {name:<22} {token}" for name, token in report.device_tokens.items()]
        self.stdout.write("\n".join(lines))
