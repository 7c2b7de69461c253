"""Every page of the site answers with a Content-Security-Policy (django-csp through
control_tower.web.ContentSecurityPolicyMiddleware); the tracking page and the driver app keep
their own stricter ones. The browser tests (tests/e2e/conftest.py `page`) fail on any
violation, so the console, reports, admin, API docs and mail viewer are known to work under it."""

from __future__ import annotations

import pytest
from django.test import override_settings

from control_tower.tenancy.roles import Role

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(
        (part.strip().split(" ", 1) + [""])[:2] for part in header.split(";") if part.strip()
    )


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/api/docs/"])
def test_public_pages_carry_the_sites_policy(client, path):
    policy = _policy(client.get(path))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"].startswith("'self'")
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"


def test_inline_styles_need_the_responses_nonce(client):
    response = client.get("/accounts/login/")
    policy = _policy(response)
    nonce = policy["style-src"].split("'nonce-")[1].rstrip("'")
    assert f'<style nonce="{nonce}">' in response.content.decode()


def test_the_console_and_reports_carry_it_with_the_tile_server(client, tenant):
    client.force_login(tenant.user(Role.DISPATCHER))
    with override_settings(TRACKING_TILE_URL="https://{s}.tiles.example/{z}/{x}/{y}.png"):
        for path in ("/console/", "/reports/"):
            policy = _policy(client.get(path))
            assert policy["img-src"].split() == [
                "'self'",
                "data:",
                "blob:",
                "https://*.tiles.example",
            ]
            assert policy["connect-src"] == "'self'"


def test_pages_with_their_own_policy_keep_it(client):
    driver = _policy(client.get("/driver/"))
    assert "media-src" in driver  # the driver app's own (camera previews)
    assert "style-src-attr" not in driver


def test_only_the_api_docs_allow_inline_style_elements(client):
    docs = _policy(client.get("/api/docs/"))
    assert docs["style-src"] == "'self' 'unsafe-inline'"
    login = _policy(client.get("/accounts/login/"))
    assert "'unsafe-inline'" not in login["style-src"]
