"""`manage.py plan_routes --org SLUG --hub CODE --date YYYY-MM-DD`: plan a hub's day (VROOM)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.core.management.base import CommandError
from django.db import transaction

from carriers.models import Driver, Vehicle
from control_tower.errors import DomainError
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.commands import OrganizationCommand
from control_tower.tenancy.roles import Role
from tracking.models import Hub
from tracking.services.planning_times import DefaultTimes
from tracking.services.route_planning import VehicleShift, plan_routes


class Command(OrganizationCommand):
    help = "Plan a hub's routes for a day with the VRP solver on the road network's times."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--hub", required=True, help="Hub code.")
        parser.add_argument("--date", required=True, help="Service day, YYYY-MM-DD.")
        parser.add_argument("--shift", default="09:00-18:00", help="Local shift, HH:MM-HH:MM.")
        parser.add_argument(
            "--vehicles",
            help="Plates, comma-separated (default: all active "
            "vehicles whose carrier has a free driver).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Show the plan, store nothing.")
        parser.add_argument(
            "--default-times",
            action="store_true",
            help="Plan with the default service and travel times, not the learned ones.",
        )

    def handle_in_organization(self, organization, *args, **options):
        zone = ZoneInfo(organization.time_zone)
        hub = Hub.objects.filter(code=options["hub"]).first()
        if hub is None:
            raise CommandError(f"No hub {options['hub']!r} in {organization.slug}.")
        try:
            day = date.fromisoformat(options["date"])
            begin, end = (time.fromisoformat(t) for t in options["shift"].split("-"))
        except ValueError as exc:
            raise CommandError(f"Use --date YYYY-MM-DD and --shift HH:MM-HH:MM ({exc}).") from exc
        vehicles = Vehicle.objects.filter(is_active=True).order_by("plate")
        if options["vehicles"]:
            vehicles = vehicles.filter(plate__in=options["vehicles"].split(","))
        free = {}
        for driver in Driver.objects.filter(is_active=True).order_by("external_id", "id"):
            free.setdefault(driver.carrier_id, []).append(driver)
        shifts = [
            VehicleShift(
                vehicle,
                free[vehicle.carrier_id].pop(0),
                datetime.combine(day, begin, tzinfo=zone),
                datetime.combine(day, end, tzinfo=zone),
            )
            for vehicle in vehicles
            if free.get(vehicle.carrier_id)
        ]
        try:
            with transaction.atomic():
                actor = Actor(organization=organization, role=Role.DISPATCHER)
                result = plan_routes(
                    actor=actor,
                    hub=hub,
                    date=day,
                    vehicles=shifts,
                    dry_run=options["dry_run"],
                    times=DefaultTimes() if options["default_times"] else None,
                )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        for key, value in result.totals.items():
            self.stdout.write(f"{key:24} {value}")
        for item in result.unassigned:
            self.stdout.write(f"unassigned {item['reference']}: {item['reason']}")
