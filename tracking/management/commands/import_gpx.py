"""`manage.py import_gpx --org SLUG --device DEVICE track.gpx [...]`: back-fill a track."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError
from django.db.models import Q
from tqdm import tqdm

from carriers.models import Device
from control_tower.tenancy.commands import OrganizationCommand
from tracking.ingest.gpx import GpxError, parse_gpx
from tracking.ingest.gpx_import import gpx_store


class Command(OrganizationCommand):
    help = (
        "Import GPX track points as pings of one device (same rules as live ingest: "
        "duplicates skipped, outliers flagged). Shows a progress bar."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--device", required=True, help="Device id, external id or name.")
        parser.add_argument("files", nargs="+", help="GPX files.")
        parser.add_argument("--batch", type=int, default=1000, help="Fixes per transaction.")
        parser.add_argument("--no-progress", action="store_true")

    def handle_in_organization(self, organization, *args, **options):
        key = options["device"]
        lookup = Q(external_id=key) | Q(name=key)
        if key.isdigit():
            lookup |= Q(pk=int(key))
        devices = list(Device.objects.select_related("organization").filter(lookup)[:2])
        if len(devices) != 1:
            found = "no device" if not devices else "several devices"
            raise CommandError(f"{found} matches {key!r} in {organization.slug}.")
        device = devices[0]
        for name in options["files"]:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            try:
                fixes = parse_gpx(path.read_bytes())
            except GpxError as exc:
                where = f" (track point {exc.point})" if exc.point is not None else ""
                raise CommandError(f"{path}{where}: {exc}") from None
            with tqdm(
                total=len(fixes), unit="pt", desc=path.name, disable=options["no_progress"]
            ) as bar:
                totals = gpx_store(device, fixes, batch_size=options["batch"], progress=bar.update)
            self.stdout.write(
                f"{path.name}: {totals['received']} points, {totals['stored']} stored, "
                f"{totals['duplicates']} already there, {totals['flagged']} flagged"
            )
