"""Who is acting, for which organization, with which rights.

An `Actor` is resolved once per request (from an API key or a logged-in person's membership),
per websocket connection and per command, and is what permission checks and row narrowing read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from control_tower.errors import NotPermitted
from control_tower.models import ApiKey, Membership, Organization, Profile
from control_tower.tenancy.roles import (
    ADMIN_ROLES,
    READ,
    WRITE,
    Resource,
    Role,
    role_allows,
    scopes_allow,
)
from control_tower.tenancy.secrets import secret_matches, split_prefix

API_KEY_KIND = "ctk"


@dataclass(frozen=True)
class Actor:
    organization: Organization
    user: AbstractBaseUser | None = None
    role: str | None = None
    api_key: ApiKey | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    # Row restrictions: a carrier user (or carrier-bound key) sees one carrier; a driver sees
    # only routes assigned to them.
    carrier_id: int | None = None
    driver_id: int | None = None
    # A driver's phone or a tracker authenticated by its device token: it may only report.
    device: object | None = None  # carriers.models.Device

    def can(self, resource: str, action: str) -> bool:
        if self.device is not None:
            return device_may(self.device, resource, action)
        if self.api_key is not None:
            return scopes_allow(self.scopes, resource, action)
        return self.role is not None and role_allows(self.role, resource, action)

    @property
    def may_watch_console(self) -> bool:
        """For templates, which cannot call `can(...)` with arguments."""
        return self.can(Resource.CONSOLE, READ)

    @property
    def is_admin(self) -> bool:
        return self.api_key is None and self.device is None and self.role in ADMIN_ROLES

    @property
    def label(self) -> str:
        if self.device is not None:
            return f"device {self.device.name} ({self.device.token_prefix})"
        if self.api_key is not None:
            return f"API key {self.api_key.name} ({self.api_key.prefix})"
        if self.user is None:  # a command or a job acting for the organization
            return "system"
        return getattr(self.user, "email", "") or str(self.user)


def device_may(device, resource: str, action: str) -> bool:
    """What a device token may do: report (pings, scans, proofs, incidents). A phone bound to a
    driver (the driver app) also reads that driver's routes and works them; which routes is
    `visible_to`'s business (tenancy/carrier_scope.py), as for everyone."""
    if resource == Resource.TRACKING and action == WRITE:
        return True
    if device.driver_id is None:
        return False
    return resource == Resource.ROUTE_PROGRESS or (resource == Resource.ROUTES and action == READ)


def actor_for_api_key(raw_key: str) -> Actor | None:
    """The actor of a valid, unrevoked, unexpired key, or None (never says why)."""
    prefix = split_prefix(raw_key, API_KEY_KIND)
    if prefix is None:
        return None
    # Authentication runs before any organization is known: the one sanctioned unscoped read.
    key = ApiKey.dangerously_unscoped.select_related("organization").filter(prefix=prefix).first()
    if key is None or not secret_matches(raw_key, key.key_hash):
        return None
    if not key.is_usable(now=timezone.now()) or not key.organization.is_active:
        return None
    return Actor(
        organization=key.organization,
        api_key=key,
        scopes=frozenset(key.scopes),
        carrier_id=key.carrier_id,
    )


def memberships_of(user: AbstractBaseUser) -> list[Membership]:
    return list(
        Membership.dangerously_unscoped.select_related("organization")
        .filter(user=user, organization__is_active=True)
        .order_by("organization__name")
    )


def actor_for_user(user: AbstractBaseUser, *, organization_slug: str | None = None) -> Actor:
    """The actor of a logged-in person in the organization they chose (header, session), else
    in their default one: the only one, or the last they chose (`Profile.last_organization`),
    or the one they joined first. Superusers may act in any organization as an owner."""
    memberships = memberships_of(user)
    if organization_slug:
        membership = next(
            (m for m in memberships if m.organization.slug == organization_slug), None
        )
        if membership is None:
            if user.is_superuser:
                organization = Organization.objects.filter(
                    slug=organization_slug, is_active=True
                ).first()
                if organization is not None:
                    return Actor(organization=organization, user=user, role=Role.OWNER)
            raise NotPermitted(f"You are not a member of organization {organization_slug!r}.")
    elif len(memberships) == 1:
        membership = memberships[0]
    elif not memberships:
        raise NotPermitted("Your account is not a member of any organization.")
    else:
        # Several organizations and no choice in this request: joining a second organization
        # must not break the person's API clients and pages in the first.
        last = (
            Profile.objects.filter(user=user).values_list("last_organization_id", flat=True).first()
        )
        membership = next(
            (m for m in memberships if m.organization_id == last),
            min(memberships, key=lambda m: (m.created_at, m.pk)),
        )
    return actor_for_membership(membership)


def actor_for_membership(membership: Membership) -> Actor:
    driver_id = None
    if membership.role == Role.DRIVER:
        from carriers.models import Driver

        driver_id = (
            Driver.dangerously_unscoped.filter(
                organization_id=membership.organization_id, user_id=membership.user_id
            )
            .values_list("id", flat=True)
            .first()
        )
    return Actor(
        organization=membership.organization,
        user=membership.user,
        role=membership.role,
        carrier_id=membership.carrier_id,
        driver_id=driver_id,
    )
