"""Writes on carriers' fleet: device credentials."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from carriers.device_auth import DEVICE_TOKEN_KIND, forget_device
from carriers.models import Device
from control_tower.tenancy.secrets import issue_secret

__all__ = ["DEVICE_TOKEN_KIND", "device_create", "device_revoke", "device_rotate_token"]


def device_create(*, organization, **fields) -> tuple[Device, str]:
    """Register a device; returns it and its raw token (shown once, stored hashed)."""
    secret = issue_secret(DEVICE_TOKEN_KIND)
    device = Device.objects.create(
        organization=organization,
        token_prefix=secret.prefix,
        token_hash=secret.digest,
        **fields,
    )
    return device, secret.raw


@transaction.atomic
def device_rotate_token(*, device: Device) -> tuple[Device, str]:
    """Replace the token (the old one stops working at once) and un-revoke the device."""
    device = Device.objects.select_for_update().get(pk=device.pk)
    secret = issue_secret(DEVICE_TOKEN_KIND)
    device.token_prefix = secret.prefix
    device.token_hash = secret.digest
    device.revoked_at = None
    device.save(update_fields=["token_prefix", "token_hash", "revoked_at"])
    forget_device(device.pk)
    return device, secret.raw


def device_revoke(*, device: Device) -> Device:
    """Revoke the token (idempotent). The device and its history stay."""
    if device.revoked_at is None:
        device.revoked_at = timezone.now()
        device.save(update_fields=["revoked_at"])
    forget_device(device.pk)
    return device
