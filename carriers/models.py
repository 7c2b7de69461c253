"""Carriers (in-house fleets, 3PLs, regional couriers, gig platforms) and their fleet."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from control_tower.tenancy.models import TenantModel

percent = [MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))]


class CarrierKind(models.TextChoices):
    IN_HOUSE = "in_house", "In-house fleet"
    THIRD_PARTY = "3pl", "Third-party logistics (3PL)"
    REGIONAL_COURIER = "regional_courier", "Regional courier"
    GIG = "gig", "Gig / crowdsourced"


# The SLA policy every carrier is held to (admin fieldset, API, scorecards).
SLA_POLICY_FIELDS = [
    "sla_on_time_target_pct",
    "sla_first_attempt_target_pct",
    "sla_grace_minutes",
    "sla_max_attempts",
    "sla_pod_required",
    "sla_pod_photo_required",
    "sla_pod_signature_required",
    "sla_pod_geofence_required",
    "sla_pod_compliance_target_pct",
    "sla_required_scans",
    "sla_scan_compliance_target_pct",
    "sla_tracking_coverage_target_pct",
    "sla_p90_lateness_target_min",
    "sla_eta_mae_target_min",
    "sla_exceptions_per_100_target",
    "sla_rating_target",
]


# The scan type names (tracking.models.ScanType values, in that order): carriers sit below
# tracking and cannot import it; a test keeps the two equal.
SCAN_TYPE_NAMES: tuple[str, ...] = (
    "picked_up",
    "arrived_at_hub",
    "loaded",
    "out_for_delivery",
    "delivered",
    "attempt_failed",
    "returned",
    "exception",
)


def validate_required_scans(value: list[str]) -> list[str]:
    """`sla_required_scans`: each a scan type name, none twice. Returns the problems found."""
    problems = []
    unknown = [name for name in value if name not in SCAN_TYPE_NAMES]
    if unknown:
        problems.append(
            f"Unknown scan type(s): {', '.join(unknown)}. Choose from: "
            f"{', '.join(SCAN_TYPE_NAMES)}."
        )
    repeated = sorted({name for name in value if value.count(name) > 1})
    if repeated:
        problems.append(f"Each scan type at most once (repeated: {', '.join(repeated)}).")
    return problems


def default_required_scans() -> list[str]:
    """Scan types every delivered parcel must have, in this order (tracking.ScanType values;
    checked by the SLA app, which sits above tracking)."""
    return ["out_for_delivery", "delivered"]


class Carrier(TenantModel):
    """Who performs deliveries, with the SLA policy every carrier is held to."""

    code = models.SlugField(max_length=32, help_text="Short code, unique in the organization.")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=CarrierKind.choices)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=32, blank=True)
    is_active = models.BooleanField(default=True)
    # SLA policy
    sla_on_time_target_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("95.00"), validators=percent
    )
    sla_first_attempt_target_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("90.00"), validators=percent
    )
    sla_grace_minutes = models.PositiveIntegerField(
        default=0, help_text="Minutes after the promised window still counted as on time."
    )
    sla_max_attempts = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    sla_pod_required = models.BooleanField(default=True)
    sla_pod_photo_required = models.BooleanField(
        default=True, help_text="A delivery's proof must include a photo."
    )
    sla_pod_signature_required = models.BooleanField(
        default=False, help_text="A delivery's proof must include the recipient's signature."
    )
    sla_pod_geofence_required = models.BooleanField(
        default=True, help_text="The proof must be captured near the delivery address."
    )
    sla_pod_compliance_target_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("98.00"), validators=percent
    )
    sla_required_scans = ArrayField(
        models.CharField(max_length=20),
        default=default_required_scans,
        blank=True,
        help_text="Scan types each delivered parcel must have, in this order.",
    )
    sla_scan_compliance_target_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("98.00"), validators=percent
    )
    sla_tracking_coverage_target_pct = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("95.00"), validators=percent
    )
    sla_p90_lateness_target_min = models.PositiveIntegerField(
        default=30, help_text="P90 lateness of late deliveries may not exceed this (minutes)."
    )
    sla_eta_mae_target_min = models.PositiveIntegerField(
        default=15, help_text="Mean absolute error of the ETAs shown to customers (minutes)."
    )
    sla_exceptions_per_100_target = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        default=Decimal("10.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Exceptions (alerts) per 100 stops may not exceed this.",
    )
    sla_rating_target = models.DecimalField(
        max_digits=3,
        decimal_places=2,
        default=Decimal("4.50"),
        validators=[MinValueValidator(Decimal("1")), MaxValueValidator(Decimal("5"))],
        help_text="Average customer rating (1–5 stars) at least this.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="carrier_code_per_org"),
            models.CheckConstraint(
                condition=Q(sla_on_time_target_pct__gte=0, sla_on_time_target_pct__lte=100)
                & Q(sla_first_attempt_target_pct__gte=0, sla_first_attempt_target_pct__lte=100)
                & Q(sla_scan_compliance_target_pct__gte=0, sla_scan_compliance_target_pct__lte=100)
                & Q(
                    sla_tracking_coverage_target_pct__gte=0,
                    sla_tracking_coverage_target_pct__lte=100,
                )
                & Q(sla_pod_compliance_target_pct__gte=0, sla_pod_compliance_target_pct__lte=100),
                name="carrier_sla_percentages_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Forms (the admin) check the required scans with the same rule as the API.
        super().clean()
        if problems := validate_required_scans(list(self.sla_required_scans or [])):
            raise ValidationError({"sla_required_scans": problems})


class Driver(TenantModel):
    carrier = models.ForeignKey(Carrier, on_delete=models.PROTECT, related_name="drivers")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="driver_profile",
        help_text="The login of a driver who also uses the web app (optional).",
    )
    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=32, blank=True)
    email = models.EmailField(blank=True)
    external_id = models.CharField(
        max_length=64, blank=True, help_text="The carrier's own id for this driver."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "carrier", "external_id"],
                condition=~Q(external_id=""),
                name="driver_external_id_per_carrier",
            ),
        ]
        indexes = [models.Index(fields=["organization", "carrier"])]

    def __str__(self) -> str:
        return self.name


class VehicleKind(models.TextChoices):
    VAN = "van", "Van"
    TRUCK = "truck", "Truck"
    CAR = "car", "Car"
    MOTORBIKE = "motorbike", "Motorbike"
    CARGO_BIKE = "cargo_bike", "Cargo bike"
    ON_FOOT = "on_foot", "On foot"


class Vehicle(TenantModel):
    carrier = models.ForeignKey(Carrier, on_delete=models.PROTECT, related_name="vehicles")
    plate = models.CharField(max_length=20, help_text="Registration plate or fleet number.")
    kind = models.CharField(max_length=20, choices=VehicleKind.choices, default=VehicleKind.VAN)
    capacity_parcels = models.PositiveIntegerField(default=120)
    capacity_kg = models.DecimalField(max_digits=8, decimal_places=1, default=Decimal("800.0"))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["plate"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "plate"], name="vehicle_plate_per_org"),
            models.CheckConstraint(
                condition=Q(capacity_kg__gte=0), name="vehicle_capacity_kg_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["organization", "carrier"])]

    def __str__(self) -> str:
        return self.plate


class DeviceKind(models.TextChoices):
    DRIVER_APP = "driver_app", "Control tower driver app"
    TRACCAR_CLIENT = "traccar_client", "Traccar Client (OsmAnd / JSON)"
    OWNTRACKS = "owntracks", "OwnTracks"
    GPS_TRACKER = "gps_tracker", "Vehicle GPS tracker"
    SCANNER = "scanner", "Barcode scanner"


class Device(TenantModel):
    """A phone or tracker that posts pings and scans with a secret token (hashed here)."""

    carrier = models.ForeignKey(Carrier, on_delete=models.PROTECT, related_name="devices")
    driver = models.ForeignKey(
        Driver, on_delete=models.SET_NULL, null=True, blank=True, related_name="devices"
    )
    vehicle = models.ForeignKey(
        Vehicle, on_delete=models.SET_NULL, null=True, blank=True, related_name="devices"
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=DeviceKind.choices)
    external_id = models.CharField(
        max_length=64, blank=True, help_text="Advisory id the device reports (not a credential)."
    )
    token_prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["name"]
        indexes = [models.Index(fields=["organization", "carrier"])]

    def __str__(self) -> str:
        return self.name
