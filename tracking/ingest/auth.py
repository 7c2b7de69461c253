"""Device tokens: how a phone or tracker proves which device (and organization) it is.

A token is `ctd_<prefix>_<secret>`, stored hashed (control_tower.tenancy.secrets). An unknown,
malformed or revoked token gets the same answer, so a caller learns nothing about devices of
other organizations.
"""

from __future__ import annotations

import base64
import binascii

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from carriers.device_auth import DEVICE_TOKEN_KIND, verified_devices
from carriers.models import Device
from control_tower.api.authentication import (
    ApiKeyAuthentication,
    MachineUser,
    OrganizationSessionAuthentication,
    checked_credential,
)
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.secrets import secret_matches, split_prefix

DEVICE_KEYWORD = "Device"
OWNTRACKS_CHALLENGE = 'Basic realm="control tower"'


def basic_credentials(header: str) -> list[str]:
    """[password, user name] of an HTTP Basic `Authorization` value (OwnTracks puts the token
    in either), or [] when it is not Basic or not decodable."""
    keyword, _, encoded = header.partition(" ")
    if keyword.lower() != "basic":
        return []
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return []
    return [password, user]


def device_for_token(raw: str) -> Device | None:
    """The active device holding this token, or None (never says why)."""
    # Cached for a few seconds: see carriers/device_auth.py for the price.
    device = verified_devices.get(raw)
    if device is None:
        device = _lookup(raw)
        if device is not None:
            verified_devices.set(raw, device)
    return device


def _lookup(raw: str) -> Device | None:
    prefix = split_prefix(raw or "", DEVICE_TOKEN_KIND)
    if prefix is None:
        return None
    # Authentication runs before any organization is known: a sanctioned unscoped read.
    device = (
        Device.dangerously_unscoped.select_related("organization")
        .filter(token_prefix=prefix)
        .first()
    )
    if device is None or not secret_matches(raw, device.token_hash):
        return None
    if device.revoked_at is not None or not device.organization.is_active:
        return None
    return device


def actor_for_device(device: Device) -> Actor:
    return Actor(
        organization=device.organization,
        device=device,
        carrier_id=device.carrier_id,
        driver_id=device.driver_id,
    )


def actor_for_device_token(raw: str) -> Actor | None:
    device = device_for_token(raw)
    return None if device is None else actor_for_device(device)


class DeviceUser(MachineUser):
    def __init__(self, device: Device):
        self.device = device

    def __str__(self) -> str:
        return f"device:{self.device.token_prefix}"


class DeviceTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Device <token>` (or `X-Device-Token: <token>`)."""

    def authenticate(self, request):
        raw = request.headers.get("X-Device-Token")
        header = request.headers.get("Authorization", "")
        if raw is None and header:
            keyword, _, value = header.partition(" ")
            if keyword.lower() != DEVICE_KEYWORD.lower():
                return None
            raw = value.strip()
        if raw is None:
            return None
        actor = checked_credential(request, raw, actor_for_device_token)
        if actor is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked device token.")
        return DeviceUser(actor.device), actor

    def authenticate_header(self, request):
        return DEVICE_KEYWORD


class DeviceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "tracking.ingest.auth.DeviceTokenAuthentication"
    name = "DeviceToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Device <token>`: issued when a device is registered or its token "
            "is rotated (POST /api/v1/devices/{id}/rotate-token/).",
        }


# Endpoints a phone, a carrier system (API key) or a person may all post to (GPX, scans, POD).
DEVICE_KEY_OR_SESSION = [
    DeviceTokenAuthentication,
    ApiKeyAuthentication,
    OrganizationSessionAuthentication,
]
