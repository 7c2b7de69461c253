"""Rendering: the branded HTML layout, the text part, headers, the windows in es and en, the
SMS opt-out footer on the first SMS to a number, escaping."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from control_tower.tenancy.scope import organization_scope
from notifications.models import TriggerSetting
from notifications.rendering import format_window, language_for, render_message
from tests.notifications import fixtures
from tests.notifications.fixtures import create_shipment, relay_now, send_due, sms_sent

notify_tenant = fixtures.notify_tenant
sms_file = fixtures.sms_file

pytestmark = pytest.mark.django_db

ZONE = ZoneInfo("America/Santiago")


def test_windows_read_naturally_in_both_languages():
    start = datetime(2026, 12, 6, 14, 10, tzinfo=ZONE)
    end = datetime(2026, 12, 6, 14, 40, tzinfo=ZONE)
    assert format_window(start, end, language="es") == "entre las 14:10 y las 14:40"
    assert format_window(start, end, language="en") == "between 2:10 and 2:40 pm"
    morning = datetime(2026, 12, 6, 11, 45, tzinfo=ZONE)
    assert format_window(morning, end, language="en") == "between 11:45 am and 2:40 pm"
    assert language_for("pt-BR") == "en" and language_for("es-CL") == "es"


def test_html_is_escaped_and_text_is_not():
    rendered = render_message(
        organization_id=None,
        trigger="shipment_created",
        channel="email",
        language="en",
        context={"organization_name": "Tom & Jerry <Co>", "reference": "R-1"},
    )
    assert "Tom &amp; Jerry &lt;Co&gt;" in rendered.html
    assert "Tom & Jerry <Co>" in rendered.text and "Tom & Jerry <Co>" in rendered.subject


def test_the_email_is_branded_with_reply_to_and_one_click_unsubscribe(
    notify_tenant, smtp_server, settings
):
    settings.PUBLIC_BASE_URL = "https://ct.example.com"
    organization = notify_tenant.organization
    organization.primary_color = "#ff6600"
    organization.support_email = "ayuda@acme.example.com"
    organization.support_phone = "+56 51 222 3344"
    organization.save()
    create_shipment(notify_tenant)
    relay_now()
    send_due(organization)
    mail = smtp_server.messages[0]
    assert mail["Reply-To"] == "ayuda@acme.example.com"
    assert mail["From"] == "Acme <control-tower@localhost>"
    html = mail.get_body(preferencelist=("html",)).get_content()
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "#ff6600" in html and "Acme" in html and "ayuda@acme.example.com" in html
    assert "+56 51 222 3344" in html
    unsubscribe = mail["List-Unsubscribe"].strip().strip("<>")
    assert (
        unsubscribe.startswith("https://ct.example.com/n/unsubscribe/")
        and unsubscribe in html
        and unsubscribe in text
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Hola Ana," in text


def test_the_stop_footer_goes_on_the_first_sms_to_a_number_only(notify_tenant, sms_file):
    organization = notify_tenant.organization
    with organization_scope(organization):
        TriggerSetting.objects.create(trigger="shipment_created", channels=["sms"])
    create_shipment(notify_tenant)
    relay_now()
    send_due(organization)
    create_shipment(notify_tenant, reference="ORD-2", barcode="BC-2")
    relay_now()
    send_due(organization)
    first, second = (s["body"] for s in sms_sent(sms_file))
    assert first.endswith("STOP para no recibir")
    assert "STOP" not in second
