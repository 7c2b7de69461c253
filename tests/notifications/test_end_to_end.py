"""The whole path with the real parts: a service emits, the relay (real Celery worker) hands
the event to the trigger, the send task renders and sends through real SMTP and the console
SMS backend."""

from __future__ import annotations

import pytest

from control_tower.tenancy.scope import organization_scope
from notifications.models import Status, Trigger, TriggerSetting
from tests.conftest import wait_for
from tests.notifications import fixtures
from tests.notifications.fixtures import (
    EMAIL_NORMALIZED,
    PHONE_E164,
    create_shipment,
    messages_of,
    sms_sent,
)

notify_tenant = fixtures.notify_tenant
sms_file = fixtures.sms_file


@pytest.mark.django_db(transaction=True)
def test_a_created_shipment_sends_its_tracking_link_by_email_and_sms(
    notify_tenant, smtp_server, sms_file, celery_worker, settings
):

    settings.PUBLIC_BASE_URL = "https://ct.example.com"
    organization = notify_tenant.organization
    with organization_scope(organization):
        TriggerSetting.objects.create(
            trigger=Trigger.SHIPMENT_CREATED, enabled=True, channels=["email", "sms"]
        )
    shipment = create_shipment(notify_tenant)

    wait_for(lambda: len(smtp_server.messages) == 1 and len(sms_sent(sms_file)) == 1, timeout=20)
    mail = smtp_server.messages[0]
    assert mail["To"] == EMAIL_NORMALIZED
    assert "ORD-1" in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "https://ct.example.com/t/" in text
    sms = sms_sent(sms_file)[0]
    assert sms["to"] == PHONE_E164
    assert "https://ct.example.com/t/" in sms["body"]
    # One link for both messages, derived again each time (never stored in the clear).
    url = sms["body"].split("https://ct.example.com/t/")[1].split()[0]
    assert url in text
    rows = wait_for(
        lambda: (
            [
                m
                for m in messages_of(organization, shipment=shipment)
                if m.status in (Status.SENT, Status.DELIVERED)
            ]
            if len(messages_of(organization, shipment=shipment, status__in=["sent", "delivered"]))
            == 2
            else None
        )
    )
    assert {m.channel for m in rows} == {"email", "sms"}
    assert all(url not in m.body_preview for m in rows)
    assert all("[tracking link]" in m.body_preview for m in rows)
