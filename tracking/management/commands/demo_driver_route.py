"""`manage.py demo_driver_route --org demo`: how to work DRV-001's route of today by hand.

What `make demo` prints beside the other URLs: the driver app's address and login, the route
(the fleet simulator leaves it alone, see tracking/simulation/person_route.py), and the
barcode of every parcel in stop order, with the PIN of the one that asks for it. `--sheet PATH`
also writes the barcodes as an HTML page of Code 128 labels, to show to the phone's camera or
print (python-barcode, a dev dependency that scripts/bootstrap.sh installs).
"""

from __future__ import annotations

import html
from datetime import date as Date
from pathlib import Path

from django.core.management.base import CommandError
from django.utils import timezone

from control_tower.tenancy.commands import OrganizationCommand
from tracking.simulation.demo import DEMO_PASSWORD
from tracking.simulation.person_route import PERSON_EMAIL, person_parcels


class Command(OrganizationCommand):
    help = (
        "Print the driver app's URL and login, the demo driver's route of the day (not driven "
        "by the simulator) and its parcels' barcodes; --sheet writes them as printable labels."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--date", help="Service day (default: today in the org's zone).")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--sheet", help="Also write the barcodes as an HTML page here.")

    def handle_in_organization(self, organization, *args, **options):
        try:
            day = (
                Date.fromisoformat(options["date"])
                if options["date"]
                else timezone.localdate(timezone.now(), organization.zone)
            )
        except ValueError as exc:
            raise CommandError(f"--date must be YYYY-MM-DD: {exc}") from exc
        base = options["base_url"].rstrip("/")
        route, parcels = person_parcels(day)
        self.stdout.write(
            f"driver    {base}/driver/   ({PERSON_EMAIL} / {DEMO_PASSWORD}: the driver app,"
            " on a phone or a narrow window)"
        )
        if route is None:
            self.stdout.write(f"  (no route of {PERSON_EMAIL}'s driver on {day})")
            return
        zone = organization.zone
        self.stdout.write(
            f"  route {route.code} of {route.driver.name}, {route.stops.count()} stops, planned"
            f" {timezone.localtime(route.planned_start, zone):%H:%M}: yours to work, the fleet"
            " simulator leaves it alone. Parcels (type the barcode or show it to the camera):"
        )
        for sequence, address, shipment, pin in parcels:
            extra = f"  PIN {pin}" if pin else ""
            count = f"{shipment.parcel_count} parcels" if shipment.parcel_count > 1 else "1 parcel"
            self.stdout.write(
                f"    stop {sequence}  {shipment.barcode:<16} {count:<10} {address}{extra}"
            )
        if options["sheet"]:
            path = Path(options["sheet"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_sheet(route, parcels), encoding="utf-8")
            self.stdout.write(f"  printable labels: {path.resolve()}")


def _sheet(route, parcels) -> str:
    try:
        import barcode
        from barcode.writer import SVGWriter
    except ImportError as exc:
        raise CommandError(
            "--sheet needs python-barcode (pip install -e '.[dev]', scripts/bootstrap.sh)"
        ) from exc
    labels = []
    for sequence, address, shipment, pin in parcels:
        svg = (
            barcode.get("code128", shipment.barcode, writer=SVGWriter())
            .render({"module_width": 0.5, "module_height": 18, "quiet_zone": 6})
            .decode()
        )
        svg = svg[svg.index("<svg") :]  # inline: without the XML declaration and doctype
        note = f" · PIN {pin}" if pin else ""
        labels.append(
            f"<figure>{svg}<figcaption>Stop {sequence} · {html.escape(shipment.reference)}"
            f" · {html.escape(address)}{note}</figcaption></figure>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Parcels of {html.escape(route.code)}</title><style>"
        "body{font-family:sans-serif;margin:2rem}figure{margin:0 0 2.5rem;break-inside:avoid}"
        "svg{max-width:100%;height:auto}</style></head><body>"
        f"<h1>Parcels of route {html.escape(route.code)} ({route.date})</h1>"
        + "".join(labels)
        + "</body></html>\n"
    )
