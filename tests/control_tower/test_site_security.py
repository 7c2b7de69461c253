"""Site-wide security rules: the organization switch redirects only to this site, and the
settings refuse to run in production without a secret key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from control_tower.tenancy.middleware import SESSION_KEY
from control_tower.tenancy.roles import Role
from tests.factories import MembershipFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/phish",
        "//evil.example.com/phish",
        "///evil.example.com",
        "\\\\evil.example.com",
        "javascript:alert(1)",
        "http://testserver.evil.example.com/",
    ],
)
def test_switch_organization_never_redirects_off_site(tenant, other_tenant, client, target):
    user = tenant.user(Role.DISPATCHER)
    MembershipFactory(organization=other_tenant.organization, user=user, role=Role.DISPATCHER)
    client.force_login(user)
    response = client.post(
        "/accounts/organization/",
        {"organization": other_tenant.organization.slug, "next": target},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    # The switch itself still happened.
    assert client.session[SESSION_KEY] == other_tenant.organization.slug


@pytest.mark.django_db
def test_switch_organization_follows_a_local_next(tenant, client):
    client.force_login(tenant.user(Role.DISPATCHER))
    response = client.post(
        "/accounts/organization/",
        {"organization": tenant.organization.slug, "next": "/console/?route=3"},
    )
    assert response.status_code == 302 and response["Location"] == "/console/?route=3"


def _import_settings(**overrides: str) -> subprocess.CompletedProcess:
    # An empty SECRET_KEY counts as unset, and being present it keeps a local .env (read with
    # overwrite=False) from supplying one.
    env = {**os.environ, "SECRET_KEY": "", **overrides}
    env["PYTHONPATH"] = str(ROOT)
    code = "import control_tower.settings as s; print('key-length', len(s.SECRET_KEY))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_settings_refuse_to_start_without_a_secret_key_when_debug_is_off():
    result = _import_settings(DEBUG="0")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr and "DEBUG" in result.stderr


def test_settings_start_with_a_secret_key_or_in_debug():
    with_key = _import_settings(DEBUG="0", SECRET_KEY="x" * 50)
    assert with_key.returncode == 0, with_key.stderr
    assert "key-length 50" in with_key.stdout
    debug = _import_settings(DEBUG="1")
    assert debug.returncode == 0, debug.stderr
    assert "key-length" in debug.stdout
