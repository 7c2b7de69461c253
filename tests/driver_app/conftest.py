from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from control_tower.ratelimit import ratelimit_reset
from tests.factories import PASSWORD

SIGN_IN = "/api/v1/driver/session/"
TODAY = "/api/v1/driver/today/"
INSTALL_ID = "0f6c1a2e-4b7d-4e1f-9a55-7d3c2b1a0e99"


@pytest.fixture(autouse=True)
def _fresh_limits():
    ratelimit_reset()
    yield
    ratelimit_reset()


def sign_in(tenant, *, install_id: str = INSTALL_ID, **extra):
    """POST the sign-in as the tenant's driver; returns the response."""
    body = {
        "email": f"driver@{tenant.organization.slug}.example.com",
        "password": PASSWORD,
        "install_id": install_id,
        "device_name": "Pixel 7",
        **extra,
    }
    return APIClient().post(SIGN_IN, body, format="json")


def phone(token: str, *, language: str = "en") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Device {token}", HTTP_ACCEPT_LANGUAGE=language)
    return client
