"""The Redis broker down while events happen: nothing is lost. The commit still succeeds (the
enqueue failure is logged and swallowed), and once it is back the relay's beat run and
`dispatch_due` (the safety nets) deliver and send."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from control_tower.celery import app
from notifications.models import Notification, Status
from notifications.services import dispatch
from tests.notifications import fixtures
from tests.notifications.fixtures import create_shipment, messages_of, relay_now

notify_tenant = fixtures.notify_tenant

DEAD_BROKER = "redis://127.0.0.1:1/0"


@contextmanager
def broker_down():
    """Point the Celery app at a port nobody listens on (connections are refused). The app's
    pools are set aside and put back afterwards, untouched, for the tests that follow."""
    conf = app.conf
    previous = (conf.broker_url, conf.broker_write_url, app._pool, app.amqp._producer_pool)
    app._pool = app.amqp._producer_pool = None
    conf.broker_url = conf.broker_write_url = DEAD_BROKER
    try:
        yield
    finally:
        conf.broker_url, conf.broker_write_url, app._pool, app.amqp._producer_pool = previous


@pytest.mark.django_db(transaction=True)
def test_messages_are_sent_once_the_broker_is_back(notify_tenant, smtp_server, caplog):
    organization = notify_tenant.organization
    with broker_down():
        shipment = create_shipment(notify_tenant)  # the write commits all the same
        relay_now()  # beat's safety-net run of the relay (its enqueue of the send fails too)
        (row,) = messages_of(organization)
        assert row.status == Status.QUEUED and row.shipment_id == shipment.pk
        assert smtp_server.messages == []
    assert "could not enqueue notifications.send" in caplog.text  # the broker really was down
    # Back. The send task was never queued: dispatch_due takes queued rows whose enqueue
    # may be lost once they are older than LOST_ENQUEUE_S.
    assert dispatch.dispatch_due() == 0  # too young to be presumed lost
    Notification.dangerously_unscoped.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(seconds=dispatch.LOST_ENQUEUE_S + 1)
    )
    assert dispatch.dispatch_due() == 1
    row.refresh_from_db()
    assert row.status == Status.SENT
    assert len(smtp_server.messages) == 1
    assert dispatch.dispatch_due() == 0  # and only once
