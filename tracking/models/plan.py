"""Hubs, shipments, routes and stops: the plan and its execution."""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models as gis
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from control_tower.tenancy.models import TenantModel


class HubKind(models.TextChoices):
    HUB = "hub", "Hub / cross-dock"
    DARK_STORE = "dark_store", "Dark store"
    DEPOT = "depot", "Carrier depot"


class Hub(TenantModel):
    code = models.SlugField(max_length=32)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=HubKind.choices, default=HubKind.HUB)
    address = models.CharField(max_length=300, blank=True)
    region = models.CharField(
        max_length=64,
        blank=True,
        help_text="Operating region the hub serves (reports group by it).",
    )
    location = gis.PointField(srid=4326, geography=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="hub_code_per_org"),
        ]

    def __str__(self) -> str:
        return self.name


class ServiceType(models.TextChoices):
    """What was sold to the shipper; scorecards filter and compare by it."""

    SAME_DAY = "same_day", "Same day"
    NEXT_DAY = "next_day", "Next day"
    STANDARD = "standard", "Standard"
    SCHEDULED = "scheduled", "Scheduled (customer-chosen window)"


class ShipmentStatus(models.TextChoices):
    INFO_RECEIVED = "info_received", "Info received"
    AT_HUB = "at_hub", "At hub"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    ATTEMPT_FAILED = "attempt_failed", "Attempt failed"
    DELIVERED = "delivered", "Delivered"
    EXCEPTION = "exception", "Exception"
    RETURNED = "returned", "Returned to sender"
    CANCELLED = "cancelled", "Cancelled"


class Shipment(TenantModel):
    reference = models.CharField(max_length=64, help_text="The shipper's order or parcel ref.")
    barcode = models.CharField(max_length=64)
    carrier = models.ForeignKey(
        "carriers.Carrier",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="shipments",
    )
    hub = models.ForeignKey(
        Hub, on_delete=models.PROTECT, null=True, blank=True, related_name="shipments"
    )
    service_type = models.CharField(
        max_length=16, choices=ServiceType.choices, default=ServiceType.STANDARD
    )
    status = models.CharField(
        max_length=20, choices=ShipmentStatus.choices, default=ShipmentStatus.INFO_RECEIVED
    )
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    recipient_name = models.CharField(max_length=200)
    recipient_phone = models.CharField(max_length=32, blank=True)
    recipient_email = models.EmailField(blank=True)
    address_line1 = models.CharField(max_length=200)
    address_line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20, blank=True)
    country_code = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2, e.g. CL.")
    location = gis.PointField(srid=4326, null=True, blank=True, help_text="Geocoded address.")
    delivery_instructions = models.TextField(blank=True, max_length=1000)
    parcel_count = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    weight_kg = models.DecimalField(
        max_digits=8, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    promised_window_start = models.DateTimeField(null=True, blank=True)
    promised_window_end = models.DateTimeField(null=True, blank=True)
    delivery_pin_hash = models.CharField(
        # As long as a password hash (Django's PBKDF2 ones are about 90 characters).
        max_length=128,
        blank=True,
        editable=False,
        help_text="The PIN the recipient gives the driver, hashed like a password; empty: no "
        "PIN check.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "reference"], name="shipment_reference_per_org"
            ),
            models.UniqueConstraint(
                fields=["organization", "barcode"], name="shipment_barcode_per_org"
            ),
            models.CheckConstraint(
                condition=Q(promised_window_start__isnull=True)
                | Q(promised_window_end__isnull=True)
                | Q(promised_window_start__lt=F("promised_window_end")),
                name="shipment_window_start_before_end",
            ),
            models.CheckConstraint(
                condition=Q(parcel_count__gte=1), name="shipment_parcel_count_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ShipmentStatus.values), name="shipment_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "-created_at"]),
            models.Index(fields=["organization", "carrier", "status"]),
            models.Index(fields=["organization", "promised_window_end"]),
        ]

    def __str__(self) -> str:
        return self.reference


class ShipmentEvent(TenantModel):
    """One status change of a shipment (the status history). Written only by the status
    service, so it always agrees with `Shipment.status`."""

    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=20, choices=ShipmentStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=ShipmentStatus.choices)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(default=timezone.now, editable=False)
    source = models.CharField(max_length=20, default="api")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta(TenantModel.Meta):
        ordering = ["occurred_at", "id"]
        indexes = [models.Index(fields=["organization", "shipment", "occurred_at"])]


class RouteStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


# A route is active (its stops can still move, its ETAs are live) until it is closed.
ACTIVE_ROUTE_STATUSES = (RouteStatus.PLANNED, RouteStatus.IN_PROGRESS)
CLOSED_ROUTE_STATUSES = (RouteStatus.COMPLETED, RouteStatus.CANCELLED)


class Route(TenantModel):
    date = models.DateField(help_text="Service day, in the organization's time zone.")
    code = models.CharField(max_length=32, help_text="Unique per organization and day.")
    hub = models.ForeignKey(Hub, on_delete=models.PROTECT, related_name="routes")
    carrier = models.ForeignKey("carriers.Carrier", on_delete=models.PROTECT, related_name="routes")
    driver = models.ForeignKey(
        "carriers.Driver", on_delete=models.SET_NULL, null=True, blank=True, related_name="routes"
    )
    vehicle = models.ForeignKey(
        "carriers.Vehicle", on_delete=models.SET_NULL, null=True, blank=True, related_name="routes"
    )
    status = models.CharField(max_length=20, choices=RouteStatus.choices, default="planned")
    planned_start = models.DateTimeField(null=True, blank=True)
    planned_end = models.DateTimeField(null=True, blank=True)
    planned_geometry = gis.LineStringField(srid=4326, null=True, blank=True)
    planned_distance_m = models.PositiveIntegerField(null=True, blank=True)
    planned_duration_s = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["-date", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "date", "code"], name="route_code_per_org_and_day"
            ),
            models.CheckConstraint(
                condition=Q(planned_start__isnull=True)
                | Q(planned_end__isnull=True)
                | Q(planned_start__lte=F("planned_end")),
                name="route_planned_start_before_end",
            ),
            models.CheckConstraint(
                condition=Q(status__in=RouteStatus.values), name="route_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "date", "status"]),
            models.Index(fields=["organization", "carrier", "date"]),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.date})"


class StopStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    ARRIVED = "arrived", "Arrived"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed attempt"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


# The status groups every module asks about, named once. A stop is open until it is visited or
# dropped; done stops count toward progress; attempted stops are the ones a driver stood at (what
# ETA learning measures); unvisited stops were dropped without a visit.
OPEN_STOP_STATUSES = (StopStatus.PENDING, StopStatus.ARRIVED)
DONE_STOP_STATUSES = (StopStatus.COMPLETED, StopStatus.FAILED, StopStatus.SKIPPED)
ATTEMPTED_STOP_STATUSES = (StopStatus.COMPLETED, StopStatus.FAILED)
UNVISITED_STOP_STATUSES = (StopStatus.CANCELLED, StopStatus.SKIPPED)


class StopKind(models.TextChoices):
    DELIVERY = "delivery", "Delivery"
    PICKUP = "pickup", "Pickup"


class FailureReason(models.TextChoices):
    """The reason taxonomy for failed attempts and exceptions, the same for every carrier: a
    carrier's own codes are mapped onto it by its feed adapter (carriers/feeds), and the
    carrier's code is kept beside it on the scan (`Scan.carrier_reason_code`)."""

    NOT_HOME = "not_home", "Recipient not home"
    REFUSED = "refused", "Refused by recipient"
    ADDRESS_NOT_FOUND = "address_not_found", "Address problem"
    ACCESS_DENIED = "access_denied", "No access to the building"
    DAMAGED = "damaged", "Parcel damaged"
    OUT_OF_TIME = "out_of_time", "Ran out of time"
    WEATHER = "weather", "Weather"
    VEHICLE = "vehicle", "Vehicle problem"
    CAPACITY = "capacity", "Capacity (not loaded, vehicle full)"
    CUSTOMS = "customs", "Customs hold"
    LOST = "lost", "Lost or missing parcel"
    OTHER = "other", "Other"


class Stop(TenantModel):
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="stops")
    sequence = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=StopKind.choices, default=StopKind.DELIVERY)
    status = models.CharField(max_length=20, choices=StopStatus.choices, default=StopStatus.PENDING)
    shipments = models.ManyToManyField(Shipment, through="StopShipment", related_name="stops")
    location = gis.PointField(srid=4326)
    address = models.CharField(max_length=300, blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    planned_arrival = models.DateTimeField(null=True, blank=True)
    planned_service_s = models.PositiveIntegerField(
        default=180, help_text="Planned dwell time at the stop, in seconds."
    )
    eta = models.DateTimeField(null=True, blank=True, editable=False)
    eta_earliest = models.DateTimeField(null=True, blank=True, editable=False)
    eta_latest = models.DateTimeField(null=True, blank=True, editable=False)
    eta_updated_at = models.DateTimeField(null=True, blank=True, editable=False)
    actual_arrival = models.DateTimeField(null=True, blank=True, editable=False)
    actual_departure = models.DateTimeField(null=True, blank=True, editable=False)
    failure_reason = models.CharField(
        max_length=32, choices=FailureReason.choices, blank=True, editable=False
    )
    notes = models.CharField(max_length=500, blank=True)
    recipient_away_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the recipient said, through their tracking link, that nobody is home.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantModel.Meta):
        ordering = ["route", "sequence"]
        constraints = [
            # Deferred so a re-sequencing can swap numbers inside one transaction.
            models.UniqueConstraint(
                fields=["route", "sequence"],
                name="stop_sequence_per_route",
                deferrable=models.Deferrable.DEFERRED,
            ),
            models.CheckConstraint(
                condition=Q(window_start__isnull=True)
                | Q(window_end__isnull=True)
                | Q(window_start__lt=F("window_end")),
                name="stop_window_start_before_end",
            ),
            models.CheckConstraint(
                condition=Q(actual_arrival__isnull=True)
                | Q(actual_departure__isnull=True)
                | Q(actual_arrival__lte=F("actual_departure")),
                name="stop_arrival_before_departure",
            ),
            models.CheckConstraint(
                condition=Q(status__in=StopStatus.values), name="stop_status_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "route", "sequence"]),
            models.Index(fields=["organization", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.route.code} #{self.sequence}"


class StopShipment(TenantModel):
    """Which shipments are handed over at a stop (several parcels to one address)."""

    stop = models.ForeignKey(Stop, on_delete=models.CASCADE, related_name="stop_shipments")
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="stop_shipments")

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["stop", "shipment"], name="stop_shipment_once"),
        ]
        indexes = [models.Index(fields=["organization", "shipment"])]
