"""The console's stop details show the messages sent about the stop's shipments."""

from __future__ import annotations

import pytest

from control_tower.tenancy.roles import Role
from notifications.selectors import masked_address
from tests.notifications import fixtures
from tests.notifications.fixtures import (
    create_shipment,
    planned_stop_for,
    relay_now,
    send_due,
)

notify_tenant = fixtures.notify_tenant
sms_file = fixtures.sms_file

pytestmark = pytest.mark.django_db


def test_masked_addresses():
    assert masked_address("sms", "+56987654321") == "+56 9 •••• 4321"
    assert masked_address("email", "ana@example.com") == "a•••@example.com"


def test_the_stop_timeline_lists_the_messages(notify_tenant, smtp_server, sms_file, api_client_for):
    from control_tower.tenancy.scope import organization_scope
    from notifications.models import TriggerSetting

    organization = notify_tenant.organization
    with organization_scope(organization):
        TriggerSetting.objects.create(trigger="shipment_created", channels=["email", "sms"])
    shipment = create_shipment(notify_tenant)
    _route, stop = planned_stop_for(notify_tenant, shipment)
    relay_now()
    send_due(organization)
    client = api_client_for(notify_tenant.user(Role.DISPATCHER))
    body = client.get(f"/api/v1/console/stops/{stop.pk}/").json()
    lines = [item["text"] for item in body["timeline"] if item["kind"] == "notification"]
    assert "SMS 'shipment created' to +56 9 •••• 4321: delivered" in lines
    assert "E-mail 'shipment created' to a•••@example.com: sent" in lines
