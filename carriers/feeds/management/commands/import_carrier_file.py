"""`manage.py import_carrier_file --org SLUG --carrier CODE --kind manifest|status FILE
[--dry-run] [--feed NAME]`: the API's file import, from a shell."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from carriers.feeds.errors import RowErrors
from carriers.feeds.imports import feed_import_file
from carriers.feeds.models import CarrierFeed, ImportKind
from carriers.models import Carrier
from control_tower.errors import DomainError
from control_tower.models import Membership
from control_tower.tenancy.actors import Actor, actor_for_membership
from control_tower.tenancy.commands import OrganizationCommand
from control_tower.tenancy.roles import Role


def command_actor(organization) -> Actor:
    owner = Membership.objects.filter(role=Role.OWNER).select_related("user").first()
    if owner is None:
        return Actor(organization=organization, role=Role.OWNER)
    return actor_for_membership(owner)


class Command(OrganizationCommand):
    help = "Import a carrier's manifest or status file (CSV or .xlsx): all rows or none."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--carrier", required=True, help="The carrier's code.")
        parser.add_argument("--kind", required=True, choices=ImportKind.values)
        parser.add_argument("--feed", help="The feed's name (default: the carrier's only feed).")
        parser.add_argument("--dry-run", action="store_true", help="Check every row, apply none.")
        parser.add_argument("file", help="Path of the .csv or .xlsx file.")

    def handle_in_organization(self, organization, *args, **options):
        carrier = Carrier.objects.filter(code=options["carrier"]).first()
        if carrier is None:
            raise CommandError(f"No carrier {options['carrier']!r} in {organization.slug}.")
        feeds = CarrierFeed.objects.filter(carrier=carrier, is_active=True)
        if options["feed"]:
            feeds = feeds.filter(name=options["feed"])
        found = list(feeds[:2])
        if len(found) != 1:
            raise CommandError(
                f"{'No' if not found else 'More than one'} active feed for {carrier.code}"
                + ("" if options["feed"] else "; name one with --feed")
                + " (create one with POST /api/v1/carrier-feeds/ or in the admin)."
            )
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        try:
            record = feed_import_file(
                actor=command_actor(organization),
                feed=found[0],
                kind=options["kind"],
                name=path.name,
                content=path.read_bytes(),
                dry_run=options["dry_run"],
            )
        except RowErrors as exc:
            for error in exc.errors:
                self.stderr.write(f"line {error['line']}, {error['column']}: {error['message']}")
            raise CommandError(f"{len(exc.errors)} row error(s); nothing was applied.") from exc
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        verb = "checked (dry run, nothing applied)" if record.dry_run else "applied"
        self.stdout.write(
            f"{path.name}: {record.row_count} row(s) {verb}; import {record.pk}: {record.summary}"
        )
