"""`manage.py tracking_links --org demo --sample 3`: fresh tracking links of today's shipments.

What `make demo` prints so a new user can open the customer's page at once: a shipment
already delivered (with its proof of delivery), one out for delivery whose stop is the
driver's next, one later in the day. `--reference REF` issues a link for one shipment instead.
Each run issues NEW links (only hashes are stored, old URLs cannot be printed again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date as Date

from django.core.management.base import CommandError
from django.db.models import F, Min
from django.utils import timezone

from control_tower.tenancy.commands import OrganizationCommand
from tracking.models import LinkSource, RouteStatus, Shipment, Stop, StopStatus
from tracking.models import ShipmentStatus as S
from tracking.services.tracking_links import link_issue, tracking_url


@dataclass(frozen=True)
class Sample:
    label: str
    shipment: Shipment


def _delivered(day: Date) -> Sample | None:
    delivered = Shipment.objects.filter(
        status=S.DELIVERED, stop_shipments__stop__route__date=day
    ).order_by("-status_changed_at", "-pk")
    with_proof = delivered.filter(pods__isnull=False).distinct().first()
    if with_proof is not None:
        return Sample("delivered, with proof of delivery", with_proof)
    shipment = delivered.first()
    return Sample("delivered (no proof of delivery yet)", shipment) if shipment else None


def _pending_stops(day: Date):
    return (
        Stop.objects.filter(
            route__date=day,
            route__status=RouteStatus.IN_PROGRESS,
            status=StopStatus.PENDING,
            stop_shipments__isnull=False,
        )
        .select_related("route")
        .distinct()
    )


def demo_samples(day: Date, count: int) -> list[Sample]:
    """Up to `count` shipments of `day` worth showing: delivered with a proof, the driver's
    next stop, later in the day, then more stops later in the day on other routes."""
    samples: list[Sample] = []
    delivered = _delivered(day)
    if delivered is not None:
        samples.append(delivered)
    pending = _pending_stops(day)
    firsts = dict(
        pending.order_by()
        .values("route_id")
        .annotate(first=Min("sequence"))
        .values_list("route_id", "first")
    )
    next_stops = sorted(
        (s for s in pending if firsts.get(s.route_id) == s.sequence),
        key=lambda s: (s.route.code, s.pk),
    )
    if next_stops:
        samples.append(
            Sample("out for delivery, the driver's next stop", next_stops[0].shipments.first())
        )
    taken = {stop.pk for stop in next_stops}
    later = [
        s
        for s in pending.order_by(F("planned_arrival").desc(nulls_last=True), "-sequence", "pk")
        if s.pk not in taken and s.sequence >= firsts[s.route_id] + 3
    ]
    seen_routes: set[int] = set()
    for stop in later:
        if stop.route_id in seen_routes:
            continue
        seen_routes.add(stop.route_id)
        samples.append(Sample("later in the day", stop.shipments.order_by("pk").first()))
    return samples[:count]


class Command(OrganizationCommand):
    help = (
        "Issue fresh tracking links for a few of today's shipments (delivered, driver next, "
        "later in the day) and print their URLs; or for one shipment (--reference)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--sample", type=int, default=3, help="How many shipments.")
        parser.add_argument("--reference", help="Issue a link for this shipment only.")
        parser.add_argument("--date", help="Service day (default: today in the org's zone).")
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="Used when neither the organization's tracking_host nor PUBLIC_BASE_URL is set.",
        )

    def handle_in_organization(self, organization, *args, **options):
        if options["reference"]:
            shipment = Shipment.objects.filter(reference=options["reference"]).first()
            if shipment is None:
                raise CommandError(f"No shipment {options['reference']!r}.")
            samples = [Sample("shipment", shipment)]
        else:
            day = (
                Date.fromisoformat(options["date"])
                if options["date"]
                else timezone.localdate(timezone.now(), organization.zone)
            )
            samples = demo_samples(day, max(options["sample"], 0))
            if not samples:
                self.stdout.write(f"No shipments on {day} to show a tracking link for.")
                return
        base = options["base_url"].rstrip("/")
        width = max(len(s.label) for s in samples)
        self.stdout.write("Tracking links (the customer's page; each is new, open on a phone):")
        for sample in samples:
            _link, raw = link_issue(
                sample.shipment, actor="manage.py tracking_links", source=LinkSource.DEMO
            )
            url = tracking_url(organization, raw)
            if url.startswith("/"):
                url = base + url
            self.stdout.write(f"  {sample.label:<{width}}  {sample.shipment.reference:<18}  {url}")
