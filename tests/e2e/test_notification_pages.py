"""The notification pages in Chromium, the way a demo user and a recipient meet them: a real
message goes through SMTP into the development mail sink, the captured-mail viewer shows it,
and its unsubscribe link opts the recipient out (no serious accessibility issue on the way)."""

from __future__ import annotations

import re
import socket

import pytest
from playwright.sync_api import expect

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from notifications.mailsink import start_sink
from notifications.models import ContactPreference, PreferenceState
from tests.conftest import wait_for
from tests.e2e.conftest import login
from tests.e2e.test_tracking_page import axe_violations
from tests.factories import PASSWORD
from tests.notifications.fixtures import create_shipment, no_quiet_hours, relay_now, send_due

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mail_sink(settings, tmp_path):
    """The demo's SMTP sink on a free port, Django's SMTP backend and the viewer on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = start_sink(tmp_path, host="127.0.0.1", port=port)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    settings.NOTIFICATIONS_MAIL_VIEWER_DIR = str(tmp_path)
    yield tmp_path
    controller.stop()


def test_a_captured_message_and_its_unsubscribe_link(
    page, live_server, tenant, mail_sink, settings
):
    settings.PUBLIC_BASE_URL = live_server.url
    organization = tenant.organization
    no_quiet_hours(organization)
    create_shipment(tenant, reference="ORD-77", barcode="BC-77")
    relay_now()
    # Sent here, or by the session's Celery worker thread if the send task queued on commit
    # reaches it first: either way the message arrives in the sink.
    send_due(organization)
    wait_for(lambda: list(mail_sink.glob("*.eml")), timeout=15)

    login(page, live_server, tenant.user(Role.OWNER).username, PASSWORD)
    page.goto(f"{live_server.url}/n/dev/mail/")
    message = page.get_by_role("link", name=re.compile("ORD-77"))
    expect(message).to_be_visible()
    message.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("ORD-77")
    text_part = page.locator("pre.mail-text")
    expect(text_part).to_contain_text("/t/")  # the tracking link
    unsubscribe = re.search(r"https?://\S+/n/unsubscribe/\S+/", text_part.inner_text())
    assert unsubscribe, text_part.inner_text()

    page.goto(unsubscribe.group(0))
    expect(page.locator("main")).to_contain_text(organization.name)
    assert axe_violations(page) == []
    page.get_by_role("button").click()
    expect(page.locator("main")).to_contain_text(re.compile("Listo|Done"))
    with organization_scope(organization):
        preference = ContactPreference.objects.get(channel="email")
    assert preference.state == PreferenceState.OPTED_OUT
    assert preference.address == "ana@example.com"
