"""The same carrier event delivered twice at once (carriers retry on timeouts): the feed lock
makes one delivery apply it and the other answer a duplicate."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from carriers.feeds import services
from carriers.feeds.models import InboundCarrierEvent
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from tracking.models import Scan

PAYLOAD = {
    "events": [
        {
            "event_id": "race-1",
            "barcode": "RACE-1",
            "status": "delivered",
            "occurred_at": "2026-11-20T10:00:00Z",
        },
        {
            "event_id": "race-2",
            "barcode": "RACE-1",
            "status": "mystery",
            "occurred_at": "2026-11-20T10:01:00Z",
        },
    ]
}


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_the_same_events_apply_them_once(tenant, make_feed, shipment_of):
    feed = make_feed("native")
    shipment_of("RACE-1", status="out_for_delivery")
    actor = actor_for_membership(tenant.members[Role.ADMIN])
    barrier = threading.Barrier(2)
    answers, failures = [], []

    def deliver():
        try:
            with organization_scope(tenant.organization):
                barrier.wait(timeout=10)
                answers.append(services.events_receive(actor=actor, feed=feed, payload=PAYLOAD))
        except Exception as exc:  # reported below: a thread's failure must fail the test
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    assert sorted(all(o.duplicate for o in answer) for answer in answers) == [False, True]
    with dangerously_all_organizations():
        assert InboundCarrierEvent.dangerously_unscoped.count() == 2
        assert Scan.dangerously_unscoped.count() == 1
