"""`manage.py verify_custody --org SLUG (--shipment REF | --all)`: recompute chains of custody.

Prints one line per shipment; exits with an error when any chain is broken."""

from __future__ import annotations

from django.core.management.base import CommandError

from control_tower.tenancy.commands import OrganizationCommand
from tracking.models import CustodyEntry, Shipment
from tracking.services.custody import custody_verify


class Command(OrganizationCommand):
    help = "Verify the hash chain of custody of one shipment or of every shipment."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--shipment", help="Reference (or barcode) of one shipment.")
        which.add_argument(
            "--all", action="store_true", help="Every shipment that has a chain of custody."
        )

    def handle_in_organization(self, organization, *args, **options):
        if options["shipment"]:
            value = options["shipment"]
            shipment = (
                Shipment.objects.filter(reference=value).first()
                or Shipment.objects.filter(barcode=value).first()
            )
            if shipment is None:
                raise CommandError(f"No shipment {value!r} in {organization.slug}.")
            shipments = [shipment]
        else:
            with_chain = CustodyEntry.objects.values("shipment_id").distinct()
            shipments = Shipment.objects.filter(pk__in=with_chain).order_by("pk").iterator()
        checked = broken = 0
        for shipment in shipments:
            checked += 1
            result = custody_verify(shipment)
            if result.valid:
                self.stdout.write(f"{shipment.reference}: OK ({result.entries} entries)")
            else:
                broken += 1
                self.stdout.write(
                    f"{shipment.reference}: BROKEN at sequence {result.first_broken_sequence} "
                    f"(entry {result.first_broken_id}): {result.reason}"
                )
        if broken:
            raise CommandError(f"{broken} of {checked} chains of custody are broken.")
        self.stdout.write(self.style.SUCCESS(f"{checked} chains of custody verified."))
