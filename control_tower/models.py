"""Tenancy: organizations, memberships with roles, invitations, API keys, profiles."""

from __future__ import annotations

import re
import zoneinfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from control_tower.tenancy.models import TenantModel
from control_tower.tenancy.roles import Role, Scope

_HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
hex_color = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour like #1f6feb.")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone {value!r}; use an IANA name like Europe/Paris.")


class Language(models.TextChoices):
    """Languages the customer-facing pages speak (the recipient's, else the browser's)."""

    SPANISH = "es", "Español"
    ENGLISH = "en", "English"


def default_reschedule_windows() -> list[list[str]]:
    return [["09:00", "13:00"], ["14:00", "19:00"]]


def default_reschedule_weekdays() -> list[int]:
    return [0, 1, 2, 3, 4, 5]  # Monday to Saturday (datetime.weekday())


def validate_reschedule_windows(value) -> None:
    """A list of ["HH:MM", "HH:MM"] pairs, each start before its end."""
    if not isinstance(value, list):
        raise ValidationError('Use a list of ["HH:MM", "HH:MM"] pairs.')
    for pair in value:
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not all(isinstance(t, str) and _HH_MM.match(t) for t in pair)
        ):
            raise ValidationError(f'{pair!r} is not a ["HH:MM", "HH:MM"] pair.')
        if pair[0] >= pair[1]:
            raise ValidationError(f"Window {pair[0]}–{pair[1]} must start before it ends.")


def validate_weekdays(value) -> None:
    if not isinstance(value, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in value):
        raise ValidationError("Use weekday numbers 0 (Monday) to 6 (Sunday).")


class Organization(models.Model):
    """A tenant: a shipper, retailer or logistics company using the control tower."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    logo = models.ImageField(upload_to="branding/", blank=True)
    primary_color = models.CharField(max_length=7, default="#1f6feb", validators=[hex_color])
    support_phone = models.CharField(max_length=32, blank=True)
    support_email = models.EmailField(blank=True)
    ping_retention_days = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text="GPS pings older than this are deleted.",
    )
    pod_geofence_m = models.PositiveIntegerField(
        default=150, help_text="A proof of delivery farther than this from the address is flagged."
    )
    # The customer tracking page (docs/TRACKING_LINKS.md): branding, links, the recipient's say.
    accent_color = models.CharField(
        max_length=7, blank=True, validators=[hex_color], help_text="Optional second colour."
    )
    support_url = models.URLField(blank=True, help_text="Help page linked from tracking pages.")
    tracking_host = models.CharField(
        max_length=253,
        blank=True,
        help_text="Custom domain of the tracking links (e.g. track.example.com); it must also "
        "be in ALLOWED_HOSTS. Empty: PUBLIC_BASE_URL.",
    )
    tracking_link_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="Tracking links stop working this many days after the shipment's final "
        "status (delivered, returned, cancelled).",
    )
    tracking_live_minutes = models.PositiveSmallIntegerField(
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(240)],
        help_text="The tracking page shows the live map when the driver is next or due "
        "within this many minutes.",
    )
    tracking_show_driver_photo = models.BooleanField(default=False)
    default_language = models.CharField(
        max_length=8, choices=Language.choices, default=Language.SPANISH
    )
    reschedule_days_ahead = models.PositiveSmallIntegerField(
        default=5,
        validators=[MaxValueValidator(60)],
        help_text="Recipients may move a delivery to one of the next N days (0: no reschedule).",
    )
    reschedule_weekdays = ArrayField(
        models.PositiveSmallIntegerField(),
        default=default_reschedule_weekdays,
        validators=[validate_weekdays],
        help_text="Days offered, 0 = Monday … 6 = Sunday.",
    )
    reschedule_windows = models.JSONField(
        default=default_reschedule_windows,
        validators=[validate_reschedule_windows],
        help_text='Windows offered each day, local time: [["09:00", "13:00"], ...].',
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(primary_color__regex=r"^#[0-9a-fA-F]{6}$"),
                name="organization_primary_color_hex",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Membership(TenantModel):
    """A person's role in one organization. Carrier users are bound to exactly one carrier."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    carrier = models.ForeignKey(
        "carriers.Carrier",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="memberships",
        help_text="Required for carrier users; they see only this carrier's data.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="membership_one_per_user_and_org"
            ),
            models.CheckConstraint(
                condition=(Q(role=Role.CARRIER_USER) & Q(carrier__isnull=False))
                | (~Q(role=Role.CARRIER_USER) & Q(carrier__isnull=True)),
                name="membership_carrier_iff_carrier_user",
            ),
        ]
        indexes = [models.Index(fields=["user", "organization"])]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()}"


class ApiKey(TenantModel):
    """A machine credential of one organization. Only the SHA-256 of the key is stored."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(models.CharField(max_length=32, choices=Scope.choices), default=list)
    carrier = models.ForeignKey(
        "carriers.Carrier",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text="Optional: restrict the key to one carrier's data (for carrier integrations).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, *, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class InvitationStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Invitation(TenantModel):
    """An offer to join the organization with a role, sent to an e-mail address.

    Nobody becomes a member until the person opens the link and accepts (logged in as that
    e-mail's account, or creating one). Only the SHA-256 of the link's secret is stored; the
    link is shown once to the inviter and e-mailed where e-mail is configured.
    """

    email = models.EmailField(help_text="Stored lower-case.")
    role = models.CharField(max_length=20, choices=Role.choices)
    carrier = models.ForeignKey(
        "carriers.Carrier",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="invitations",
        help_text="Required for carrier users.",
    )
    token_prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_hash = models.CharField(max_length=64, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(editable=False)
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email_and_org",
            ),
            models.CheckConstraint(
                condition=(Q(role=Role.CARRIER_USER) & Q(carrier__isnull=False))
                | (~Q(role=Role.CARRIER_USER) & Q(carrier__isnull=True)),
                name="invitation_carrier_iff_carrier_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} · {self.get_role_display()} ({self.status})"

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return InvitationStatus.ACCEPTED
        if self.revoked_at is not None:
            return InvitationStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return InvitationStatus.EXPIRED
        return InvitationStatus.PENDING


class Profile(models.Model):
    """What the platform remembers about a person across organizations (not tenant data)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    last_organization = models.ForeignKey(
        Organization,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Where a person in several organizations works when they do not choose.",
    )

    def __str__(self) -> str:
        return str(self.user)


# The outbox lives with the events package; imported here so Django registers its models.
from control_tower.events.models import OutboxEvent, OutboxReceipt  # noqa: E402, F401
