"""Due messages sent as one batch: one SMTP session, a bounded number of statements, and every
per-message guarantee kept (logs per status change, the lease, at-least-once)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from control_tower.tenancy.scope import organization_scope
from notifications import tasks
from notifications.models import NotificationLog, Status
from notifications.services import delivery
from tests.notifications import fixtures
from tests.notifications.fixtures import create_shipment, messages_of, relay_now

notify_tenant = fixtures.notify_tenant

pytestmark = pytest.mark.django_db

N = 12


def _queued_messages(tenant, n: int = N) -> list:
    for i in range(n):
        create_shipment(
            tenant, reference=f"ORD-{i}", barcode=f"BC-{i}", recipient_email=f"c{i}@example.com"
        )
    relay_now()
    queued = messages_of(tenant.organization, status=Status.QUEUED)
    assert len(queued) == n  # shipment created: one e-mail each
    return queued


def test_a_batch_of_due_messages_goes_over_one_smtp_session_in_bounded_queries(
    notify_tenant, smtp_server
):
    queued = _queued_messages(notify_tenant)
    ids = [m.pk for m in queued]
    with organization_scope(notify_tenant.organization), CaptureQueriesContext(connection) as q:
        outcomes = delivery.notifications_send(notification_ids=ids)

    assert outcomes == {pk: Status.SENT for pk in ids}
    assert len(smtp_server.messages) == N
    assert len(set(smtp_server.peers)) == 1  # one client port: one SMTP session for the batch
    assert sorted(m["To"] for m in smtp_server.messages) == sorted(m.address for m in queued)
    # Per message: the consent re-check (1) and the tracking link (1 to find it; a first
    # message of a shipment issues it: savepoint, limit check, INSERT, release). The claim,
    # settings, trigger, templates, status UPDATE and log inserts are once per batch (~10).
    # One message at a time took ~20 statements each.
    assert len(q.captured_queries) <= 10 + 7 * N, len(q.captured_queries)
    with organization_scope(notify_tenant.organization):
        for message in messages_of(notify_tenant.organization):
            assert message.status == Status.SENT and message.sent_at is not None
            assert message.lease_until is None and message.attempts == 1
            statuses = list(
                NotificationLog.objects.filter(notification=message).values_list(
                    "status", flat=True
                )
            )
            assert statuses == [Status.QUEUED, Status.SENDING, Status.SENT]


def test_the_send_task_takes_the_organization_s_other_due_messages_along(
    notify_tenant, smtp_server
):
    first, *others = _queued_messages(notify_tenant, 5)

    assert tasks.send(first.pk, notify_tenant.organization.pk) == Status.SENT
    assert len(smtp_server.messages) == 5
    assert len(set(smtp_server.peers)) == 1
    # Their own tasks come later and find them sent: nothing goes twice.
    for message in others:
        assert tasks.send(message.pk, notify_tenant.organization.pk) == "skipped"
    assert len(smtp_server.messages) == 5


def test_a_message_refused_in_a_batch_does_not_stop_the_others(notify_tenant, smtp_server):
    queued = _queued_messages(notify_tenant, 4)
    smtp_server.refuse[queued[1].address] = 550
    smtp_server.refuse[queued[2].address] = 451
    with organization_scope(notify_tenant.organization):
        outcomes = delivery.notifications_send(notification_ids=[m.pk for m in queued])

    assert outcomes == {
        queued[0].pk: Status.SENT,
        queued[1].pk: "failed",
        queued[2].pk: "retry",
        queued[3].pk: Status.SENT,
    }
    assert sorted(m["To"] for m in smtp_server.messages) == [queued[0].address, queued[3].address]
    retried = messages_of(notify_tenant.organization, pk=queued[2].pk)[0]
    assert retried.status == Status.QUEUED and retried.next_attempt_at is not None


def test_a_batch_out_of_time_puts_the_rest_back_without_counting_an_attempt(
    notify_tenant, smtp_server, settings
):
    queued = _queued_messages(notify_tenant, 3)
    settings.NOTIFICATIONS_LEASE_S = 0  # half the lease is spent before the first message
    with organization_scope(notify_tenant.organization):
        outcomes = delivery.notifications_send(notification_ids=[m.pk for m in queued])

    assert outcomes == {}
    assert smtp_server.messages == []
    for message in messages_of(notify_tenant.organization):
        assert message.status == Status.QUEUED and message.attempts == 0
        assert message.lease_until is None
        with organization_scope(notify_tenant.organization):
            last = NotificationLog.objects.filter(notification=message).last()
        assert last.status == Status.QUEUED and "out of time" in last.detail
