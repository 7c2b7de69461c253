"""Route-side triggers (driver nearby, window moved), rescheduling through the tracking link,
alerts for customers and escalations for staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from control_tower.events import catalog, emit
from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.scope import organization_scope
from exceptions.services import alert_raise, alerts_escalate
from notifications.models import Status, Trigger
from tests.factories import stop_with_shipments
from tests.notifications import fixtures
from tests.notifications.fixtures import (
    EMAIL,
    PHONE,
    create_shipment,
    messages_of,
    owner_actor,
    planned_stop_for,
    relay_now,
    send_due,
    sms_sent,
)
from tracking.models import Stop, StopShipment
from tracking.services import customer_actions as actions
from tracking.services import shipment_transition
from tracking.services.routes import route_start
from tracking.services.stops import stop_complete
from tracking.services.tracking_links import link_issue

notify_tenant = fixtures.notify_tenant
sms_file = fixtures.sms_file

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits():
    ratelimit_reset()
    yield
    ratelimit_reset()


def _two_stop_route(tenant):
    """A started route: stop 1 (another parcel), stop 2 (ours, with phone and e-mail)."""
    first = create_shipment(tenant, reference="FIRST", barcode="B-FIRST", recipient_phone="")
    ours = create_shipment(tenant)
    route, stop1 = planned_stop_for(tenant, first, sequence=1)
    organization = tenant.organization
    with organization_scope(organization):
        stop2 = Stop.objects.create(
            organization=organization, route=route, sequence=2, location=stop1.location
        )
        StopShipment.objects.create(organization=organization, stop=stop2, shipment=ours)
        route_start(route=route, actor=owner_actor(tenant))
    return route, stop1, stop2, ours


def _set_eta(route, stop, start):
    """What the ETA engine does: store the stop's interval and emit `stop.eta_changed`."""
    with organization_scope(route.organization), transaction.atomic():
        Stop.objects.filter(pk=stop.pk).update(
            eta=start + timedelta(minutes=10),
            eta_earliest=start,
            eta_latest=start + timedelta(minutes=30),
        )
        emit(
            catalog.stop_eta_changed(
                route,
                stop_id=stop.pk,
                sequence=stop.sequence,
                eta=start + timedelta(minutes=10),
                earliest=start,
                latest=start + timedelta(minutes=30),
            )
        )


def test_driver_nearby_once_the_stop_before_is_done(notify_tenant, sms_file):
    organization = notify_tenant.organization
    route, stop1, _stop2, ours = _two_stop_route(notify_tenant)
    relay_now()
    assert messages_of(organization, trigger=Trigger.DRIVER_NEARBY) == []  # still at the hub
    with organization_scope(organization):
        stop_complete(stop=stop1, actor=owner_actor(notify_tenant))
    relay_now()
    (nearby,) = messages_of(organization, trigger=Trigger.DRIVER_NEARBY)
    assert nearby.shipment_id == ours.pk and nearby.channel == "sms"
    assert nearby.context["stops_away"] == 0
    send_due(organization)
    body = next(s["body"] for s in sms_sent(sms_file) if "está a" in s["body"])
    assert "Pedro está a" in body
    # Another stop event the same day: still one message.
    _set_eta(route, _stop2, timezone.now() + timedelta(minutes=5))
    relay_now()
    assert len(messages_of(organization, trigger=Trigger.DRIVER_NEARBY)) == 1


def test_the_window_moved_message_once_per_new_window(notify_tenant, sms_file):
    organization = notify_tenant.organization
    first = timezone.now() + timedelta(hours=4)
    shipment = create_shipment(notify_tenant)
    route, stop = planned_stop_for(notify_tenant, shipment)
    _set_eta(route, stop, first)
    with organization_scope(organization):
        route_start(route=route, actor=owner_actor(notify_tenant))
    relay_now()
    (told,) = messages_of(organization, trigger=Trigger.OUT_FOR_DELIVERY, channel="sms")
    assert told.context["window"].startswith("entre las ")
    _set_eta(route, stop, first + timedelta(minutes=10))  # within eta_moved_min: nothing
    relay_now()
    assert messages_of(organization, trigger=Trigger.ETA_WINDOW_MOVED) == []
    later = first + timedelta(minutes=90)
    _set_eta(route, stop, later)
    _set_eta(route, stop, later + timedelta(seconds=20))  # the same window again
    relay_now()
    moved = messages_of(organization, trigger=Trigger.ETA_WINDOW_MOVED)
    assert [m.channel for m in moved] == ["sms"]
    assert moved[0].context["window"] != told.context["window"]


def test_a_narrower_window_inside_the_promised_one_is_not_news(notify_tenant, sms_file):
    organization = notify_tenant.organization
    promised = timezone.now().replace(second=0, microsecond=0) + timedelta(hours=3)
    shipment = create_shipment(
        notify_tenant,
        promised_window_start=promised,
        promised_window_end=promised + timedelta(hours=4),
    )
    route, stop = planned_stop_for(notify_tenant, shipment)
    with organization_scope(organization):
        route_start(route=route, actor=owner_actor(notify_tenant))
    relay_now()
    (told,) = messages_of(organization, trigger=Trigger.OUT_FOR_DELIVERY, channel="sms")
    assert told.context["window_end"]
    _set_eta(route, stop, promised + timedelta(hours=2))  # 30 min inside the 4 h promise
    relay_now()
    assert messages_of(organization, trigger=Trigger.ETA_WINDOW_MOVED) == []
    _set_eta(route, stop, promised + timedelta(hours=5))  # an hour past the promise's end
    relay_now()
    assert len(messages_of(organization, trigger=Trigger.ETA_WINDOW_MOVED)) == 1


def test_a_reschedule_through_the_link_confirms_in_the_link_s_language(notify_tenant, smtp_server):
    organization = notify_tenant.organization
    with organization_scope(organization):
        from tests.factories import RouteFactory

        route = RouteFactory(
            organization=organization, carrier=notify_tenant.carrier, status="in_progress"
        )
        stop = stop_with_shipments(route=route, sequence=1, count=1)
        shipment = stop.shipments.get()
        shipment.recipient_email, shipment.recipient_phone = EMAIL, PHONE
        shipment.save()
        shipment_transition(shipment=shipment, to_status="out_for_delivery", actor=None)
        link, _raw = link_issue(shipment, actor=None, language="en")
    option = actions.customer_reschedule_options(link)[0]
    actions.customer_reschedule(link, option_id=option.id, key="form-key-0001")
    relay_now()
    (confirmation,) = messages_of(organization, trigger=Trigger.RESCHEDULED)
    assert confirmation.language == "en"
    assert confirmation.context["window"].startswith("between ")
    send_due(organization)
    mail = next(m for m in smtp_server.messages if "rescheduled" in m["Subject"])
    assert "Your order" in mail["Subject"]


def test_customers_hear_about_late_parcels_not_about_batteries(notify_tenant):
    organization = notify_tenant.organization
    shipment = create_shipment(notify_tenant)
    relay_now()
    # A failed attempt's alert says nothing more: `attempt_failed` already told them.
    for kind in ("predicted_late", "battery_low", "failed_attempt"):
        alert_raise(
            organization_id=organization.pk,
            kind=kind,
            subject_type="shipment",
            subject_id=shipment.pk,
            severity="medium",
            started_at=timezone.now(),
            title=kind,
            shipment=shipment,
            carrier_id=notify_tenant.carrier.pk,
        )
    relay_now()
    (row,) = messages_of(organization, trigger=Trigger.EXCEPTION_RAISED)
    assert row.context["reason"] == "podría llegar más tarde de lo prometido"


def test_escalated_alerts_email_staff_and_the_carrier_s_users(notify_tenant, smtp_server):
    organization = notify_tenant.organization
    alert = alert_raise(
        organization_id=organization.pk,
        kind="route_not_started",
        subject_type="route",
        subject_id=1,
        severity="medium",
        started_at=timezone.now(),
        title="Route R1 not started",
        carrier_id=notify_tenant.carrier.pk,
    )
    assert alerts_escalate(timezone.now() + timedelta(hours=3), organization_id=organization.pk)
    relay_now()
    rows = messages_of(organization, trigger=Trigger.STAFF_ALERT_ESCALATED)
    assert {r.address for r in rows} == {
        "owner@acme.example.com",
        "admin@acme.example.com",
        "dispatcher@acme.example.com",
        "carrier_user@acme.example.com",
    }
    assert all(r.alert_id == alert.pk and r.audience == "staff" for r in rows)
    send_due(organization)
    subjects = {m["Subject"] for m in smtp_server.messages}
    assert subjects == {"[Acme] Alerta escalada: Route R1 not started"}
    assert all("List-Unsubscribe" not in m for m in smtp_server.messages)
    assert all(r.status == Status.SENT for r in messages_of(organization, audience="staff"))
