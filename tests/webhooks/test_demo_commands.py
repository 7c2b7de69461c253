"""The demo's webhook wiring: `webhooks_demo` subscribes a local receiver (allow list, endpoint,
a fresh secret in a private file) and `webhook_receiver --secret-file` verifies with it."""

from __future__ import annotations

import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from control_tower.tenancy.scope import organization_scope
from tests.webhooks.conftest import emit_status, pump
from webhooks.models import WebhookEndpoint
from webhooks.services import settings_for_organization


def test_the_demo_endpoint_reaches_a_verifying_receiver(tenant, receivers, tmp_path):
    receiver = receivers()  # started first: its port goes into the endpoint's URL
    secret_file = tmp_path / "secret"
    out = StringIO()
    call_command(
        "webhooks_demo",
        "--org",
        tenant.organization.slug,
        "--url",
        receiver.url,
        "--secret-file",
        str(secret_file),
        stdout=out,
    )
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    receiver.secrets = [secret_file.read_text().strip()]
    receiver.verify = True
    with organization_scope(tenant.organization):
        assert "127.0.0.1" in settings_for_organization().allowed_private_hosts
        [endpoint] = WebhookEndpoint.objects.all()
        assert endpoint.event_types == ["*"] and endpoint.enabled
    emit_status(tenant, shipment_id=7, status="delivered")
    pump(lambda: len(receiver.accepted()) == 1)
    assert receiver.accepted()[0].verified

    # A restarted demo reuses the endpoint with a new secret; the old one stops signing.
    old = secret_file.read_text()
    call_command(
        "webhooks_demo",
        "--org",
        tenant.organization.slug,
        "--url",
        receiver.url,
        "--secret-file",
        str(secret_file),
        stdout=out,
    )
    assert secret_file.read_text() != old
    with organization_scope(tenant.organization):
        assert WebhookEndpoint.objects.count() == 1
        assert WebhookEndpoint.objects.get().previous_secret_encrypted == ""


def test_an_unknown_organization_is_an_error(db, tmp_path):
    with pytest.raises(CommandError, match="No organization"):
        call_command("webhooks_demo", "--org", "nope", "--secret-file", str(tmp_path / "s"))
