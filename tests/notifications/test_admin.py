"""The notification admin: the message log with its delivery log, the template preview,
tenant scoping, the "retry now" action."""

from __future__ import annotations

import pytest

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from notifications.models import Notification, NotificationTemplate, Status
from tests.notifications import fixtures
from tests.notifications.fixtures import create_shipment, messages_of, relay_now

notify_tenant = fixtures.notify_tenant

pytestmark = pytest.mark.django_db


def test_the_log_is_scoped_and_failed_messages_can_be_retried(notify_tenant, other_tenant, client):
    fixtures.no_quiet_hours(other_tenant.organization)
    create_shipment(notify_tenant)
    create_shipment(other_tenant, reference="THEIRS-1")
    relay_now()
    (ours,) = messages_of(notify_tenant.organization)
    (theirs,) = messages_of(other_tenant.organization)
    Notification.dangerously_unscoped.filter(pk=ours.pk).update(status=Status.FAILED)
    client.force_login(notify_tenant.user(Role.OWNER))
    listing = client.get("/admin/notifications/notification/")
    assert listing.status_code == 200
    assert b"ana@example.com" in listing.content
    detail = client.get(f"/admin/notifications/notification/{ours.pk}/change/")
    assert detail.status_code == 200 and b"queued" in detail.content
    other = client.get(f"/admin/notifications/notification/{theirs.pk}/change/")
    assert other.status_code in (302, 404)
    client.post(
        "/admin/notifications/notification/",
        {"action": "retry_now", "_selected_action": [ours.pk]},
    )
    ours.refresh_from_db()
    assert ours.status == Status.QUEUED


def test_the_template_preview_shows_the_sms_length(notify_tenant, client):
    organization = notify_tenant.organization
    with organization_scope(organization):
        template = NotificationTemplate.objects.create(
            trigger="driver_nearby",
            channel="sms",
            language="es",
            text="{{ driver_first_name }} llega en {{ minutes_away }} min",
        )
    client.force_login(notify_tenant.user(Role.OWNER))
    page = client.get(f"/admin/notifications/notificationtemplate/{template.pk}/change/")
    assert page.status_code == 200
    assert b"Pedro llega en 15 min" in page.content
    assert b"GSM-7" in page.content
    for path in ("notificationsettings", "triggersetting", "contactpreference"):
        assert client.get(f"/admin/notifications/{path}/").status_code == 200


def test_trigger_settings_are_checked_in_the_admin(notify_tenant, client):
    client.force_login(notify_tenant.user(Role.OWNER))
    answer = client.post(
        "/admin/notifications/triggersetting/add/",
        {
            "trigger": "driver_nearby",
            "enabled": "on",
            "channels": '["fax"]',
            "parameters": '{"stops_away": 2, "nope": 1}',
        },
    )
    assert answer.status_code == 200  # the form again, with errors
    assert b"Known parameters: max_age_min, minutes_away, stops_away" in answer.content
    with organization_scope(notify_tenant.organization):
        from notifications.models import TriggerSetting

        assert not TriggerSetting.objects.exists()
