"""Each trigger from the real services: events go through the outbox relay to the
subscribers, which create the messages; sending goes through real SMTP and the console SMS."""

from __future__ import annotations

import pytest

from control_tower.events import backfill
from control_tower.tenancy.scope import organization_scope
from notifications.models import Status, Trigger, TriggerSetting
from tests.notifications import fixtures
from tests.notifications.fixtures import (
    PHONE_E164,
    create_shipment,
    messages_of,
    owner_actor,
    planned_stop_for,
    relay_now,
    send_due,
    sms_sent,
)
from tracking.services.routes import route_start
from tracking.services.stops import stop_complete, stop_fail

notify_tenant = fixtures.notify_tenant
sms_file = fixtures.sms_file

pytestmark = pytest.mark.django_db


def _by_trigger(organization, trigger):
    return messages_of(organization, trigger=trigger)


def test_shipment_created_emails_the_tracking_link_once(notify_tenant, smtp_server, sms_file):
    organization = notify_tenant.organization
    shipment = create_shipment(notify_tenant)
    relay_now()
    relay_now()  # nothing left: a re-run creates nothing
    rows = _by_trigger(organization, Trigger.SHIPMENT_CREATED)
    assert [(m.channel, m.status) for m in rows] == [("email", Status.QUEUED)]
    assert rows[0].shipment_id == shipment.pk
    assert send_due(organization) == ["sent"]
    mail = smtp_server.messages[0]
    assert mail["Subject"] == "Tu pedido ORD-1 de Acme está en camino"  # es: the default
    assert "/t/" in mail.get_body(preferencelist=("plain",)).get_content()


def test_out_for_delivery_delivered_and_feedback_from_the_stop_services(
    notify_tenant, smtp_server, sms_file
):
    organization = notify_tenant.organization
    shipment = create_shipment(notify_tenant)
    route, stop = planned_stop_for(notify_tenant, shipment)
    with organization_scope(organization):
        route_start(route=route, actor=owner_actor(notify_tenant))
    relay_now()
    out = _by_trigger(organization, Trigger.OUT_FOR_DELIVERY)
    assert {m.channel for m in out} == {"email", "sms"}
    send_due(organization)
    sms = sms_sent(sms_file)
    assert sms[0]["to"] == PHONE_E164
    assert "sale hoy a reparto" in sms[0]["body"]
    assert sms[0]["body"].endswith("STOP para no recibir")  # the first SMS to this number

    with organization_scope(organization):
        stop_complete(stop=stop, actor=owner_actor(notify_tenant))
    relay_now()
    delivered = _by_trigger(organization, Trigger.DELIVERED)
    assert [m.status for m in delivered] == [Status.QUEUED]
    feedback = _by_trigger(organization, Trigger.FEEDBACK_REQUEST)
    assert [m.status for m in feedback] == [Status.HELD]  # feedback_delay_min later
    assert (feedback[0].send_after - delivered[0].created_at).total_seconds() > 110 * 60


def test_attempt_failed_names_the_reason_and_the_reschedule_link(
    notify_tenant, smtp_server, sms_file
):
    organization = notify_tenant.organization
    shipment = create_shipment(notify_tenant)
    route, stop = planned_stop_for(notify_tenant, shipment)
    with organization_scope(organization):
        route_start(route=route, actor=owner_actor(notify_tenant))
        stop_fail(stop=stop, reason="not_home", actor=owner_actor(notify_tenant))
    relay_now()
    failed = _by_trigger(organization, Trigger.ATTEMPT_FAILED)
    assert {m.channel for m in failed} == {"email", "sms"}
    assert failed[0].context["reason"] == "no había nadie en casa"
    send_due(organization)
    bodies = [s["body"] for s in sms_sent(sms_file)]
    assert any("no había nadie en casa" in b and "/t/" in b for b in bodies)


def test_english_templates_follow_the_tracking_links_language(notify_tenant, smtp_server, sms_file):
    organization = notify_tenant.organization
    organization.default_language = "en"
    organization.save()
    create_shipment(notify_tenant)
    relay_now()
    send_due(organization)
    assert smtp_server.messages[0]["Subject"] == "Your Acme order ORD-1 is on its way"


def test_backfilled_history_sends_nothing(notify_tenant):
    with backfill():
        create_shipment(notify_tenant)
    relay_now()
    assert messages_of(notify_tenant.organization) == []


def test_a_disabled_trigger_sends_nothing(notify_tenant):
    organization = notify_tenant.organization
    with organization_scope(organization):
        TriggerSetting.objects.create(trigger=Trigger.SHIPMENT_CREATED, enabled=False)
    create_shipment(notify_tenant)
    relay_now()
    assert messages_of(organization) == []


def test_the_same_event_handled_twice_makes_one_message(notify_tenant):
    from control_tower.events.models import OutboxEvent
    from notifications.triggers.shipments import on_shipment_created

    organization = notify_tenant.organization
    create_shipment(notify_tenant)
    row = OutboxEvent.dangerously_unscoped.get(type="shipment.created")
    relay_now()
    with organization_scope(organization):
        on_shipment_created(row.as_event())  # a re-delivery past the receipt
    assert len(messages_of(organization)) == 1
