"""The admin: an owner manages their endpoints (the secret shown once in a message), reads the
delivery log with attempts inline, replays; another organization's rows stay out."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.webhooks.conftest import deliveries, emit_status, make_endpoint, pump
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

ADMIN = "/admin/webhooks"


def test_admin_pages_render_scoped_and_actions_work(tenant, other_tenant, client, receivers):
    receiver = receivers()
    receiver.verify = False
    receiver.fail_next = 1
    ours, secret = make_endpoint(tenant, receiver.url)
    theirs, _ = make_endpoint(other_tenant, "https://theirs.example.com/h")
    emit_status(tenant, shipment_id=1, status="delivered")
    pump(lambda: len(receiver.accepted()) == 1)
    [delivery] = deliveries(endpoint_id=ours.pk)
    client.force_login(tenant.user(Role.OWNER))

    listing = client.get(f"{ADMIN}/webhookendpoint/")
    assert listing.status_code == 200
    assert receiver.url.encode() in listing.content and b"theirs.example.com" not in listing.content
    page = client.get(f"{ADMIN}/webhookendpoint/{ours.pk}/change/")
    assert page.status_code == 200 and secret.encode() not in page.content
    assert client.get(f"{ADMIN}/webhookendpoint/{theirs.pk}/change/").status_code in (302, 404)

    log = client.get(f"{ADMIN}/webhookdelivery/?status__exact=succeeded")
    assert log.status_code == 200 and b"shipment.status_changed" in log.content
    detail = client.get(f"{ADMIN}/webhookdelivery/{delivery.pk}/change/")
    assert detail.status_code == 200 and b"HTTP 500" in detail.content  # the attempts inline
    assert client.get(f"{ADMIN}/webhooksettings/").status_code == 200

    replayed = client.post(
        f"{ADMIN}/webhookdelivery/", {"action": "replay", "_selected_action": [delivery.pk]}
    )
    assert replayed.status_code == 302
    assert len(deliveries(endpoint_id=ours.pk)) == 2

    rotated = client.post(
        f"{ADMIN}/webhookendpoint/",
        {"action": "rotate_secret", "_selected_action": [ours.pk, theirs.pk]},
        follow=True,
    )
    shown = [str(m) for m in get_messages(rotated.wsgi_request)] or [rotated.content.decode()]
    assert any("whsec_" in m for m in shown)
    with organization_scope(tenant.organization):
        assert WebhookEndpoint.objects.get(pk=ours.pk).previous_secret_until is not None
    with organization_scope(other_tenant.organization):
        assert WebhookEndpoint.objects.get(pk=theirs.pk).previous_secret_until is None

    client.post(f"{ADMIN}/webhookendpoint/", {"action": "disable", "_selected_action": [ours.pk]})
    with organization_scope(tenant.organization):
        assert not WebhookEndpoint.objects.get(pk=ours.pk).enabled
    client.post(f"{ADMIN}/webhookendpoint/", {"action": "enable", "_selected_action": [ours.pk]})
    client.post(f"{ADMIN}/webhookendpoint/", {"action": "send_test", "_selected_action": [ours.pk]})
    with organization_scope(tenant.organization):
        assert WebhookEndpoint.objects.get(pk=ours.pk).enabled
        assert WebhookDelivery.objects.filter(event_type="webhook.test").count() == 1


def test_adding_an_endpoint_in_the_admin_shows_its_secret_once(tenant, client):
    client.force_login(tenant.user(Role.OWNER))
    added = client.post(
        f"{ADMIN}/webhookendpoint/add/",
        {
            "name": "From admin",
            "url": "https://erp.example.com/in",
            "event_types": "shipment.status_changed, alert.*",
            "carrier": "",
            "enabled": "on",
        },
        follow=True,
    )
    assert added.status_code == 200
    messages = [str(m) for m in get_messages(added.wsgi_request)]
    assert b"whsec_" in added.content or any("whsec_" in m for m in messages)
    with organization_scope(tenant.organization):
        endpoint = WebhookEndpoint.objects.get(name="From admin")
    assert endpoint.event_types == ["shipment.status_changed", "alert.*"]
    assert endpoint.secret_encrypted

    refused = client.post(
        f"{ADMIN}/webhookendpoint/add/",
        {"name": "Bad", "url": "ftp://x/", "event_types": "vehicle.moved", "enabled": "on"},
    )
    assert refused.status_code == 200 and b"live only" in refused.content
    assert b"Only http and https" in refused.content
