"""Signing a driver's phone in and out.

A sign-in turns a person's e-mail and password into a **device token** bound to their driver
record: the phone then posts pings, scans, proofs and stop events through the same public API
as any other device, and a dispatcher revokes the phone like any device (admin action, or
`DELETE /api/v1/devices/{id}/`). No session cookie is involved, so the app keeps working for
days offline, and a stolen password cannot be replayed from the phone's storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import authenticate, get_user_model
from django.db import transaction

from carriers.models import Device, DeviceKind, Driver
from carriers.services import device_create, device_revoke, device_rotate_token
from control_tower.errors import DomainError, NotPermitted
from control_tower.models import Membership, Organization
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status_code = 401


@dataclass(frozen=True)
class SignIn:
    device: Device
    token: str
    driver: Driver
    organization: Organization


def _user(email: str, password: str):
    """The active user with this e-mail and password, or None (never says which was wrong)."""
    user = authenticate(username=email, password=password)
    if user is None:
        # Accounts whose user name is not their e-mail still sign in with the e-mail.
        match = get_user_model().objects.filter(email__iexact=email).first()
        if match is not None and match.get_username() != email:
            user = authenticate(username=match.get_username(), password=password)
    return user if user is not None and user.is_active else None


def _driver_membership(user, organization_slug: str | None) -> Membership:
    # Before any organization is chosen: the person's own memberships, a sanctioned unscoped read.
    memberships = list(
        Membership.dangerously_unscoped.select_related("organization").filter(
            user=user, role=Role.DRIVER, organization__is_active=True
        )
    )
    if organization_slug:
        memberships = [m for m in memberships if m.organization.slug == organization_slug]
    if not memberships:
        raise NotPermitted(
            "This account does not drive for any organization; ask your dispatcher to add you "
            "as a driver.",
            code="not_a_driver",
        )
    if len(memberships) > 1:
        raise DomainError(
            "You drive for several organizations: choose one.",
            fields={"organization": [m.organization.slug for m in memberships]},
            code="choose_organization",
        )
    return memberships[0]


def driver_sign_in(
    *,
    email: str,
    password: str,
    install_id: str,
    device_name: str = "",
    organization_slug: str | None = None,
) -> SignIn:
    """A device token for this driver's phone. The same installation signing in again gets a
    new token for the same device record (the old token stops working), not a second device."""
    user = _user(email, password)
    if user is None:
        raise InvalidCredentials("Wrong e-mail or password.")
    organization = _driver_membership(user, organization_slug).organization
    with organization_scope(organization), transaction.atomic():
        driver = Driver.objects.select_related("carrier").filter(user=user).first()
        if driver is None or not driver.is_active:
            raise NotPermitted(
                "Your account has no active driver profile here; ask your dispatcher.",
                code="not_a_driver",
            )
        device = (
            Device.objects.select_for_update()
            .filter(driver=driver, kind=DeviceKind.DRIVER_APP, external_id=install_id)
            .first()
        )
        name = (device_name or "").strip()[:100] or f"{driver.name}'s phone"
        if device is None:
            device, token = device_create(
                organization=organization,
                carrier=driver.carrier,
                driver=driver,
                name=name,
                kind=DeviceKind.DRIVER_APP,
                external_id=install_id,
            )
        else:
            device.name, device.carrier = name, driver.carrier
            device.save(update_fields=["name", "carrier"])
            device, token = device_rotate_token(device=device)
    return SignIn(device=device, token=token, driver=driver, organization=organization)


def driver_sign_out(*, device: Device) -> None:
    """The phone signs itself out: its token stops working (the device and history stay)."""
    device_revoke(device=device)
