"""The notification endpoints: roles, cross-tenant 404s, the carrier matrix, validation."""

from __future__ import annotations

import pytest

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from notifications.models import NotificationTemplate
from tests.notifications import fixtures
from tests.notifications.fixtures import create_shipment, messages_of, relay_now

notify_tenant = fixtures.notify_tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_messages(notify_tenant, other_tenant):
    """One message of the tenant's carrier, one of another carrier, one of another org."""
    from tests.factories import CarrierFactory

    fixtures.no_quiet_hours(other_tenant.organization)
    other_carrier = CarrierFactory(organization=notify_tenant.organization, code="other")
    create_shipment(notify_tenant)
    create_shipment(notify_tenant, reference="ORD-2", barcode="BC-2", carrier=other_carrier)
    create_shipment(other_tenant)
    relay_now()
    mine = messages_of(notify_tenant.organization)
    theirs = messages_of(other_tenant.organization)
    assert len(mine) == 2 and len(theirs) == 1
    return mine, theirs[0]


def test_the_message_log_lists_and_shows_logs(two_messages, notify_tenant, api_client_for):
    mine, theirs = two_messages
    client = api_client_for(notify_tenant.user(Role.DISPATCHER))
    listed = client.get("/api/v1/notifications/")
    assert listed.status_code == 200
    assert {m["id"] for m in listed.json()["results"]} == {m.pk for m in mine}
    detail = client.get(f"/api/v1/notifications/{mine[0].pk}/")
    assert detail.json()["logs"][0]["status"] == "queued"
    # Another organization's message answers like a missing one.
    assert client.get(f"/api/v1/notifications/{theirs.pk}/").status_code == 404
    assert client.get("/api/v1/notifications/999999/").status_code == 404
    filtered = client.get("/api/v1/notifications/", {"shipment": mine[0].shipment_id})
    assert [m["id"] for m in filtered.json()["results"]] == [mine[0].pk]


def test_carrier_users_see_only_their_carrier_s_messages(
    two_messages, notify_tenant, api_client_for, api_key_for
):
    mine, _theirs = two_messages
    own = next(m for m in mine if m.carrier_id == notify_tenant.carrier.pk)
    other = next(m for m in mine if m.carrier_id != notify_tenant.carrier.pk)
    client = api_client_for(notify_tenant.user(Role.CARRIER_USER))
    listed = client.get("/api/v1/notifications/").json()["results"]
    assert [m["id"] for m in listed] == [own.pk]
    assert client.get(f"/api/v1/notifications/{other.pk}/").status_code == 404
    key = api_key_for(notify_tenant, scopes=["notifications:read"], carrier=notify_tenant.carrier)
    by_key = api_client_for(key=key).get("/api/v1/notifications/").json()["results"]
    assert [m["id"] for m in by_key] == [own.pk]
    # Organization-wide policy is not theirs.
    assert client.get("/api/v1/notification-templates/").status_code == 403
    assert client.get("/api/v1/notification-contacts/").status_code == 403
    assert client.get("/api/v1/notification-settings/").status_code == 403
    assert client.get("/api/v1/notification-triggers/").status_code == 403


def test_drivers_have_no_access(notify_tenant, api_client_for):
    client = api_client_for(notify_tenant.user(Role.DRIVER))
    assert client.get("/api/v1/notifications/").status_code == 403


def test_settings_read_and_patch(notify_tenant, other_tenant, api_client_for):
    owner = api_client_for(notify_tenant.user(Role.OWNER))
    answer = owner.patch(
        "/api/v1/notification-settings/", {"rate_limit_per_hour": 3}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["rate_limit_per_hour"] == 3
    other = api_client_for(other_tenant.user(Role.OWNER))
    assert other.get("/api/v1/notification-settings/").json()["rate_limit_per_hour"] == 5
    dispatcher = api_client_for(notify_tenant.user(Role.DISPATCHER))
    assert dispatcher.get("/api/v1/notification-settings/").status_code == 200
    refused = dispatcher.patch(
        "/api/v1/notification-settings/", {"rate_limit_per_hour": 9}, format="json"
    )
    assert refused.status_code == 403


def test_triggers_list_and_patch(notify_tenant, other_tenant, api_client_for):
    owner = api_client_for(notify_tenant.user(Role.OWNER))
    listed = owner.get("/api/v1/notification-triggers/").json()
    assert {t["trigger"] for t in listed} >= {"shipment_created", "driver_nearby"}
    answer = owner.patch(
        "/api/v1/notification-triggers/driver_nearby/",
        {"channels": ["email", "sms"], "parameters": {"stops_away": 2}},
        format="json",
    )
    assert answer.status_code == 200
    assert answer.json()["parameters"]["stops_away"] == 2
    assert answer.json()["channels"] == ["email", "sms"]
    bad = owner.patch(
        "/api/v1/notification-triggers/driver_nearby/",
        {"parameters": {"nope": 1}},
        format="json",
    )
    assert bad.status_code == 400 and "parameters" in str(bad.json())
    assert owner.get("/api/v1/notification-triggers/nope/").status_code == 404
    # Another organization's triggers keep their own settings.
    other = api_client_for(other_tenant.user(Role.OWNER))
    theirs = other.get("/api/v1/notification-triggers/driver_nearby/").json()
    assert theirs["parameters"]["stops_away"] == 3 and theirs["channels"] == ["sms"]


def test_templates_crud_preview_and_cross_tenant(notify_tenant, other_tenant, api_client_for):
    owner = api_client_for(notify_tenant.user(Role.OWNER))
    created = owner.post(
        "/api/v1/notification-templates/",
        {
            "trigger": "out_for_delivery",
            "channel": "sms",
            "language": "es",
            "text": "{{ organization_name }}: ¡hoy llega {{ reference }}! 🚚",
        },
        format="json",
    )
    assert created.status_code == 201
    preview = owner.post(
        "/api/v1/notification-templates/preview/",
        {"trigger": "out_for_delivery", "channel": "sms", "language": "es"},
        format="json",
    ).json()
    assert preview["text"] == "Acme: ¡hoy llega ORD-10023! 🚚"
    assert preview["sms"]["encoding"] == "UCS-2"
    english = owner.post(
        "/api/v1/notification-templates/preview/",
        {"trigger": "out_for_delivery", "channel": "email", "language": "en"},
        format="json",
    ).json()
    assert english["subject"] == "Your order ORD-10023 is out for delivery"
    assert "<html" in english["html"] and "Acme" in english["html"]
    broken = owner.post(
        "/api/v1/notification-templates/",
        {"trigger": "delivered", "channel": "sms", "language": "es", "text": "{% if %}"},
        format="json",
    )
    assert broken.status_code == 400 and "text" in broken.json()["fields"]
    other = api_client_for(other_tenant.user(Role.OWNER))
    assert other.get(f"/api/v1/notification-templates/{created.json()['id']}/").status_code == 404
    # Their preview renders the shipped template, never our override.
    their_preview = other.post(
        "/api/v1/notification-templates/preview/",
        {"trigger": "out_for_delivery", "channel": "sms", "language": "es"},
        format="json",
    ).json()
    assert "🚚" not in their_preview["text"] and "Globex" in their_preview["text"]
    with organization_scope(other_tenant.organization):
        assert NotificationTemplate.objects.count() == 0


def test_contacts_validate_and_normalize(notify_tenant, other_tenant, api_client_for):
    owner = api_client_for(notify_tenant.user(Role.OWNER))
    bad = owner.post(
        "/api/v1/notification-contacts/",
        {"channel": "sms", "address": "12", "state": "opted_out"},
        format="json",
    )
    assert bad.status_code == 400 and "address" in bad.json()["fields"]
    made = owner.post(
        "/api/v1/notification-contacts/",
        {"channel": "sms", "address": "9 8765 4321", "state": "opted_out", "region": "CL"},
        format="json",
    )
    assert made.status_code == 201 and made.json()["address"] == "+56987654321"
    other = api_client_for(other_tenant.user(Role.OWNER))
    assert other.get("/api/v1/notification-contacts/").json()["results"] == []
    assert other.get(f"/api/v1/notification-contacts/{made.json()['id']}/").status_code == 404


def test_a_shipment_s_messages(two_messages, notify_tenant, api_client_for):
    mine, theirs = two_messages
    own = next(m for m in mine if m.carrier_id == notify_tenant.carrier.pk)
    other = next(m for m in mine if m.carrier_id != notify_tenant.carrier.pk)
    dispatcher = api_client_for(notify_tenant.user(Role.DISPATCHER))
    listed = dispatcher.get(f"/api/v1/shipments/{own.shipment_id}/notifications/")
    assert [m["id"] for m in listed.json()["results"]] == [own.pk]
    assert (
        dispatcher.get(f"/api/v1/shipments/{theirs.shipment_id}/notifications/").json()["error"]
        == "not_found"
    )
    carrier_user = api_client_for(notify_tenant.user(Role.CARRIER_USER))
    path = f"/api/v1/shipments/{other.shipment_id}/notifications/"
    assert carrier_user.get(path).status_code == 404
