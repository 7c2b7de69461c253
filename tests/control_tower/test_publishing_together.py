"""Live sends of a batch in one Redis round trip (`realtime.publishing_together`, used by
`emit_many`'s after-commit delivery): nothing leaves before the block ends, then every message
arrives in order with consecutive seq numbers per group, on a real Redis Pub/Sub."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from control_tower import realtime
from control_tower.events import catalog, emit_many
from control_tower.redis_clients import sync_redis
from control_tower.tenancy.scope import organization_scope
from tests.factories import RouteFactory


def _listen(*groups):
    pubsub = sync_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*(realtime.live_channel(group) for group in groups))
    pubsub.get_message(timeout=0.5)
    return pubsub


def _drain(pubsub, count: int, timeout: float = 5.0) -> list[tuple[str, dict]]:
    """(channel, message) pairs, until `count` arrived or the timeout."""
    messages, deadline = [], time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            messages.append((channel, json.loads(message["data"])))
    return messages


def test_sends_wait_for_the_end_of_the_block_then_arrive_in_order():
    organization_id, carrier_id = 9_101, 77
    org_group = realtime.organization_group(organization_id)
    carrier_group = realtime.carrier_group(organization_id, carrier_id)
    pubsub = _listen(org_group, carrier_group)
    org_start, carrier_start = realtime.group_seq(org_group), realtime.group_seq(carrier_group)
    with realtime.publishing_together():
        for number in range(5):  # odd numbers also go to the carrier's group
            realtime.publish_sync_now(
                organization_id=organization_id,
                carrier_id=carrier_id if number % 2 else None,
                event="stop.eta",
                data={"id": number},
            )
        with realtime.publishing_together():  # a nested block joins the outer one
            realtime.publish_sync_now(
                organization_id=organization_id, event="stop.eta", data={"id": 5}
            )
        assert pubsub.get_message(timeout=0.3) is None  # nothing has left yet
        assert realtime.group_seq(org_group) == org_start
    messages = _drain(pubsub, 6 + 2)
    on_org = [m for channel, m in messages if channel == realtime.live_channel(org_group)]
    on_carrier = [m for channel, m in messages if channel == realtime.live_channel(carrier_group)]
    assert [m["data"]["id"] for m in on_org] == [0, 1, 2, 3, 4, 5]
    assert [m["seq"] for m in on_org] == list(range(org_start + 1, org_start + 7))
    assert [m["data"]["id"] for m in on_carrier] == [1, 3]
    assert [m["seq"] for m in on_carrier] == [carrier_start + 1, carrier_start + 2]
    pubsub.close()


@pytest.mark.django_db(transaction=True)
def test_emit_many_delivers_every_event_live_after_commit_in_order(tenant):
    organization = tenant.organization
    with organization_scope(organization):
        route = RouteFactory(organization=organization, carrier=tenant.carrier)
    now = timezone.now()
    events = [
        catalog.stop_eta_changed(
            route,
            stop_id=1_000 + number,
            sequence=number + 1,
            eta=now + timedelta(minutes=number),
            earliest=now,
            latest=now + timedelta(minutes=2 * number),
        )
        for number in range(30)
    ]
    group = realtime.organization_group(organization.pk)
    pubsub = _listen(group)
    start = realtime.group_seq(group)
    with organization_scope(organization), transaction.atomic():
        emit_many(events)
        assert realtime.group_seq(group) == start  # nothing before the commit
    messages = [m for _channel, m in _drain(pubsub, 30) if m["type"] == "stop.eta"]
    assert [m["data"]["id"] for m in messages] == [1_000 + n for n in range(30)]
    assert [m["seq"] for m in messages] == list(range(start + 1, start + 31))
    pubsub.close()
