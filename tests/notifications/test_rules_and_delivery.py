"""Quiet hours, consent and opt-out, rate limit, staleness; retries on temporary SMTP errors,
failure on permanent ones; provider reports; leases; the public endpoints."""

from __future__ import annotations

import json
from datetime import time, timedelta

import pytest
from django.utils import timezone

from control_tower.tenancy.scope import organization_scope
from notifications.models import (
    ContactPreference,
    Notification,
    NotificationLog,
    Status,
    Trigger,
    TriggerSetting,
)
from notifications.policy import settings_for
from notifications.services import dispatch
from notifications.unsubscribe import make_token
from tests.notifications import fixtures
from tests.notifications.fixtures import (
    EMAIL_NORMALIZED,
    PHONE,
    PHONE_E164,
    create_shipment,
    messages_of,
    relay_now,
    send_due,
    sms_sent,
)

notify_tenant = fixtures.notify_tenant
sms_file = fixtures.sms_file

pytestmark = pytest.mark.django_db


def _quiet_now(organization):
    """Quiet hours that cover the present hour and end at least an hour from now, in the
    organization's zone (UTC): a test must not depend on the minute it runs at."""
    from zoneinfo import ZoneInfo

    options = settings_for(organization)
    now = timezone.now().astimezone(ZoneInfo(organization.time_zone))
    options.quiet_hours_start = time((now.hour - 1) % 24, 0)
    options.quiet_hours_end = time((now.hour + 2) % 24, 0)
    options.save()


def test_quiet_hours_hold_the_message_then_dispatch_sends_it(notify_tenant, smtp_server):
    organization = notify_tenant.organization
    _quiet_now(organization)
    create_shipment(notify_tenant)
    relay_now()
    (held,) = messages_of(organization)
    assert held.status == Status.HELD
    assert held.send_after > timezone.now()
    assert dispatch.dispatch_due() == 0  # not yet
    # The clock leaves quiet hours (moved here: the hours end now and the message is due).
    fixtures.no_quiet_hours(organization)
    Notification.dangerously_unscoped.filter(pk=held.pk).update(
        send_after=timezone.now() - timedelta(seconds=1)
    )
    assert dispatch.dispatch_due() == 1
    held.refresh_from_db()
    assert held.status == Status.SENT
    assert len(smtp_server.messages) == 1


def test_a_held_message_past_its_age_is_dropped_not_sent(notify_tenant, smtp_server):
    organization = notify_tenant.organization
    _quiet_now(organization)
    create_shipment(notify_tenant)
    relay_now()
    (held,) = messages_of(organization)
    Notification.dangerously_unscoped.filter(pk=held.pk).update(
        send_after=timezone.now() - timedelta(seconds=1),
        expires_at=timezone.now() - timedelta(seconds=1),
    )
    dispatch.dispatch_due()
    held.refresh_from_db()
    assert (held.status, held.reason) == (Status.SUPPRESSED, "quiet_hours_expired")
    assert smtp_server.messages == []


def test_quiet_hours_longer_than_the_messages_life_suppress_it_at_once(notify_tenant):
    organization = notify_tenant.organization
    _quiet_now(organization)
    with organization_scope(organization):
        TriggerSetting.objects.create(
            trigger=Trigger.SHIPMENT_CREATED, channels=["email"], parameters={"max_age_min": 5}
        )
    create_shipment(notify_tenant)
    relay_now()
    (row,) = messages_of(organization)
    assert (row.status, row.reason) == (Status.SUPPRESSED, "quiet_hours_expired")


def test_an_unsubscribe_link_opts_out_and_later_messages_are_suppressed(
    notify_tenant, smtp_server, client, settings
):
    settings.PUBLIC_BASE_URL = "https://ct.example.com"
    organization = notify_tenant.organization
    create_shipment(notify_tenant)
    relay_now()
    send_due(organization)
    mail = smtp_server.messages[0]
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = mail["List-Unsubscribe"].strip().strip("<>")
    path = link[link.index("/n/") :]
    page = client.get(path)
    assert page.status_code == 200 and EMAIL_NORMALIZED in page.content.decode()
    # RFC 8058 one-click, as a mail client sends it (no session, no CSRF token).
    answer = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    with organization_scope(organization):
        assert ContactPreference.objects.get(address=EMAIL_NORMALIZED).state == "opted_out"
    create_shipment(notify_tenant, reference="ORD-2", barcode="BC-2")
    relay_now()
    latest = messages_of(organization)[-1]
    assert (latest.status, latest.reason) == (Status.SUPPRESSED, "opted_out")


def test_an_opt_out_while_held_stops_the_message(notify_tenant, smtp_server, client):
    organization = notify_tenant.organization
    _quiet_now(organization)
    create_shipment(notify_tenant)
    relay_now()
    (held,) = messages_of(organization)
    token = make_token(organization.pk, "email", EMAIL_NORMALIZED)
    assert client.post(f"/n/unsubscribe/{token}/").status_code == 200
    Notification.dangerously_unscoped.filter(pk=held.pk).update(send_after=timezone.now())
    dispatch.dispatch_due()
    held.refresh_from_db()
    assert (held.status, held.reason) == (Status.SUPPRESSED, "opted_out")
    assert smtp_server.messages == []


def test_a_forged_unsubscribe_token_is_404(client):
    assert client.get("/n/unsubscribe/not-a-token/").status_code == 404


def test_sms_stop_opts_out_and_start_opts_back_in(notify_tenant, sms_file, client):
    organization = notify_tenant.organization
    headers = {"HTTP_X_CONSOLE_SMS_SECRET": "console-secret"}
    body = json.dumps({"from": PHONE_E164, "to": "+15550000000", "body": "Stop"})
    url = "/n/sms/console/inbound/"
    assert client.post(url, body, "application/json").status_code == 403  # no secret
    assert client.post(url, body, "application/json", **headers).status_code == 200
    with organization_scope(organization):
        TriggerSetting.objects.create(
            trigger=Trigger.SHIPMENT_CREATED, channels=["sms"], enabled=True
        )
    create_shipment(notify_tenant)
    relay_now()
    (row,) = messages_of(organization)
    assert (row.status, row.reason) == (Status.SUPPRESSED, "opted_out")
    start = json.dumps({"from": PHONE, "to": "+15550000000", "body": "ALTA"})
    client.post(url, start, "application/json", **headers)
    with organization_scope(organization):
        assert ContactPreference.objects.get(address=PHONE_E164).state == "opted_in"
    assert client.post("/n/sms/nope/inbound/", body, "application/json").status_code == 404


def test_consent_required_suppresses_without_an_opt_in(notify_tenant):
    organization = notify_tenant.organization
    options = settings_for(organization)
    options.email_requires_opt_in = True
    options.save()
    create_shipment(notify_tenant)
    relay_now()
    (row,) = messages_of(organization)
    assert (row.status, row.reason) == (Status.SUPPRESSED, "no_consent")


def test_the_rate_limit_suppresses_with_a_reason(notify_tenant):
    organization = notify_tenant.organization
    options = settings_for(organization)
    options.rate_limit_per_hour = 2
    options.save()
    for n in range(3):
        create_shipment(notify_tenant, reference=f"ORD-{n}", barcode=f"BC-{n}")
    relay_now()
    rows = messages_of(organization)
    assert [r.status for r in rows] == [Status.QUEUED, Status.QUEUED, Status.SUPPRESSED]
    assert rows[2].reason == "rate_limited"


def test_an_invalid_phone_is_suppressed_as_invalid_address(notify_tenant):
    organization = notify_tenant.organization
    with organization_scope(organization):
        TriggerSetting.objects.create(trigger=Trigger.SHIPMENT_CREATED, channels=["sms"])
    create_shipment(notify_tenant, recipient_phone="12")
    relay_now()
    (row,) = messages_of(organization)
    assert (row.status, row.reason) == (Status.SUPPRESSED, "invalid_address")


def test_a_temporary_smtp_error_is_retried_then_sent(notify_tenant, smtp_server, settings):
    settings.NOTIFICATIONS_RETRY_BASE_S = 0
    organization = notify_tenant.organization
    smtp_server.refuse[EMAIL_NORMALIZED] = 451
    create_shipment(notify_tenant)
    relay_now()
    assert send_due(organization) == ["retry"]
    (row,) = messages_of(organization)
    assert row.status == Status.QUEUED and row.next_attempt_at is not None
    del smtp_server.refuse[EMAIL_NORMALIZED]
    assert dispatch.dispatch_due() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.SENT, 2)
    assert len(smtp_server.messages) == 1
    assert smtp_server.messages[0]["Message-ID"] == f"<{row.idempotency_key}@control-tower.local>"
    statuses = list(
        NotificationLog.dangerously_unscoped.filter(notification=row).values_list(
            "status", flat=True
        )
    )
    assert statuses == ["queued", "sending", "queued", "sending", "sent"]


def test_a_permanent_smtp_error_fails_at_once(notify_tenant, smtp_server):
    organization = notify_tenant.organization
    smtp_server.refuse[EMAIL_NORMALIZED] = 550
    create_shipment(notify_tenant)
    relay_now()
    assert send_due(organization) == ["failed"]
    (row,) = messages_of(organization)
    assert row.status == Status.FAILED
    last = NotificationLog.dangerously_unscoped.filter(notification=row).last()
    assert last.provider_code == "550"
    with organization_scope(organization):
        assert dispatch.notification_retry_now(message=row)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.QUEUED, 0)


def test_a_dead_worker_s_lease_expires_and_the_message_goes_again(notify_tenant, smtp_server):
    organization = notify_tenant.organization
    create_shipment(notify_tenant)
    relay_now()
    (row,) = messages_of(organization)
    Notification.dangerously_unscoped.filter(pk=row.pk).update(
        status=Status.SENDING, lease_until=timezone.now() - timedelta(seconds=1), attempts=1
    )
    assert dispatch.dispatch_due() == 1
    row.refresh_from_db()
    assert row.status == Status.SENT
    assert len(smtp_server.messages) == 1


def test_provider_reports_move_forward_only(notify_tenant, sms_file, client):
    organization = notify_tenant.organization
    with organization_scope(organization):
        TriggerSetting.objects.create(trigger=Trigger.SHIPMENT_CREATED, channels=["sms"])
    create_shipment(notify_tenant)
    relay_now()
    (row,) = messages_of(organization)
    Notification.dangerously_unscoped.filter(pk=row.pk).update(status=Status.SENT)
    headers = {"HTTP_X_CONSOLE_SMS_SECRET": "console-secret"}
    url = f"/n/sms/console/status/{row.idempotency_key}/"

    def report(status):
        body = json.dumps({"id": "console-1", "status": status})
        return client.post(url, body, "application/json", **headers)

    assert client.post(url, "{}", "application/json").status_code == 403
    assert report("delivered").status_code == 200
    row.refresh_from_db()
    assert row.status == Status.DELIVERED
    report("sent")  # late and out of order
    report("delivered")  # again
    row.refresh_from_db()
    assert row.status == Status.DELIVERED
    logs = NotificationLog.dangerously_unscoped.filter(notification=row, status="delivered")
    assert logs.count() == 1
    assert sms_sent(sms_file) == []


def test_an_event_older_than_it_is_useful_sends_nothing(notify_tenant, smtp_server):
    from control_tower.events.models import OutboxEvent

    organization = notify_tenant.organization
    create_shipment(notify_tenant)
    # The relay was down for two days: "your order was created" is no news any more.
    OutboxEvent.dangerously_unscoped.filter(type="shipment.created").update(
        occurred_at=timezone.now() - timedelta(days=2)
    )
    relay_now()
    (row,) = messages_of(organization)
    assert (row.status, row.reason) == (Status.SUPPRESSED, "stale")
    assert send_due(organization) == []


def test_the_organization_s_age_cap_applies_to_every_trigger(notify_tenant):
    from control_tower.events.models import OutboxEvent

    organization = notify_tenant.organization
    options = settings_for(organization)
    options.max_age_min = 10  # shipment_created alone would allow a day
    options.save()
    create_shipment(notify_tenant)
    OutboxEvent.dangerously_unscoped.filter(type="shipment.created").update(
        occurred_at=timezone.now() - timedelta(minutes=11)
    )
    relay_now()
    (row,) = messages_of(organization)
    assert (row.status, row.reason) == (Status.SUPPRESSED, "stale")


def test_a_message_due_in_quiet_hours_waits_for_their_end(notify_tenant, smtp_server):
    organization = notify_tenant.organization
    create_shipment(notify_tenant)
    relay_now()
    (row,) = messages_of(organization)
    assert row.status == Status.QUEUED
    _quiet_now(organization)  # quiet hours began before the send task ran
    assert send_due(organization) == ["skipped"]
    row.refresh_from_db()
    assert row.status == Status.HELD and row.send_after > timezone.now()
    assert smtp_server.messages == []
