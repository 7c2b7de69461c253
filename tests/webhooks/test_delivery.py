"""The dispatcher against a real receiver (HTTP server in a thread, verifying with the
reference `standardwebhooks` code): signed deliveries, retries, timeouts, order per shipment,
dead letter, auto-disable and its notice, replay."""

from __future__ import annotations

import json
from datetime import timedelta

from django.utils import timezone

from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from tests.webhooks.conftest import deliveries, emit_status, make_endpoint, pump
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookEndpoint


def _attempts(delivery):
    with dangerously_all_organizations():
        attempts = WebhookAttempt.dangerously_unscoped.filter(delivery=delivery)
        return list(attempts.order_by("number"))


def test_signed_deliveries_arrive_and_are_logged(tenant, receivers):
    endpoint, secret = make_endpoint(tenant, "http://placeholder/")
    receiver = receivers(secret=secret)
    with organization_scope(tenant.organization):
        services.endpoint_update(actor=None, endpoint=endpoint, url=receiver.url)
    events = [emit_status(tenant, shipment_id=i, status="in_transit") for i in (1, 2, 3)]
    pump(lambda: len(receiver.accepted()) == 3)

    got = receiver.accepted()
    assert all(r.verified for r in got)
    assert {r.event_id for r in got} == {str(e.id) for e in events}
    first = got[0]
    assert first.headers["content-type"] == "application/json"
    assert first.headers["user-agent"] == "control-tower-webhooks/1"
    assert first.headers["webhook-signature"].startswith("v1,")
    made = {str(d.event_id): d for d in deliveries(endpoint_id=endpoint.pk)}
    delivery = made[first.event_id]
    assert first.message_id == delivery.message_id
    assert json.loads(first.body) == delivery.payload
    assert delivery.status == "succeeded" and delivery.attempts == 1
    assert delivery.finished_at is not None and delivery.last_status_code == 204
    [attempt] = _attempts(delivery)
    assert attempt.response_status == 204 and attempt.error == ""
    assert attempt.request_headers["webhook-id"] == delivery.message_id
    with dangerously_all_organizations():
        endpoint = WebhookEndpoint.dangerously_unscoped.get(pk=endpoint.pk)
    assert endpoint.last_success_at is not None and endpoint.consecutive_failures == 0


def test_server_errors_are_retried_with_the_same_webhook_id(tenant, receivers):
    receiver = receivers()
    receiver.verify = False
    endpoint, _ = make_endpoint(tenant, receiver.url)
    receiver.fail_next = 2
    emit_status(tenant, shipment_id=9, status="delivered")
    pump(lambda: len(receiver.accepted()) == 1)

    [delivery] = deliveries(endpoint_id=endpoint.pk)
    assert delivery.status == "succeeded" and delivery.attempts == 3
    assert [a.response_status for a in _attempts(delivery)] == [500, 500, 204]
    assert [a.error for a in _attempts(delivery)][:2] == ["HTTP 500", "HTTP 500"]
    assert len({r.message_id for r in receiver.received}) == 1  # idempotency key kept


def test_a_slow_receiver_times_out_and_is_retried(tenant, receivers, settings):
    settings.WEBHOOKS_TIMEOUT_S = 0.3
    receiver = receivers()
    receiver.verify = False
    receiver.sleep_s = 1.0
    endpoint, _ = make_endpoint(tenant, receiver.url)
    emit_status(tenant, shipment_id=10, status="delivered")
    pump()
    [delivery] = deliveries(endpoint_id=endpoint.pk)
    assert delivery.status == "retrying"
    attempt = _attempts(delivery)[0]
    assert attempt.error.startswith("timeout") and attempt.response_status is None
    assert attempt.duration_ms < 900

    receiver.sleep_s = 0
    pump(lambda: deliveries(endpoint_id=endpoint.pk)[0].status == "succeeded")
    assert deliveries(endpoint_id=endpoint.pk)[0].attempts >= 2


def test_order_per_shipment_holds_under_retries(tenant, receivers):
    receiver = receivers()
    receiver.verify = False
    endpoint, _ = make_endpoint(tenant, receiver.url)
    a1 = emit_status(tenant, shipment_id=100, status="picked_up")
    a2 = emit_status(tenant, shipment_id=100, status="in_transit")
    a3 = emit_status(tenant, shipment_id=100, status="delivered")
    b1 = emit_status(tenant, shipment_id=200, status="picked_up")
    failures = {"left": 2}

    def fail_a1_twice(record):
        if record.event_id == str(a1.id) and failures["left"]:
            failures["left"] -= 1
            return 503
        return None

    receiver.fail_when = fail_a1_twice
    pump(lambda: len(receiver.accepted()) == 4)

    arrivals = [r.event_id for r in receiver.received]
    accepted = [r.event_id for r in receiver.accepted()]
    # Shipment 100 arrived in order; 2 and 3 were not even tried before 1 succeeded.
    assert [e for e in accepted if e != str(b1.id)] == [str(a1.id), str(a2.id), str(a3.id)]
    assert arrivals.index(str(a2.id)) > len(arrivals) - 1 - arrivals[::-1].index(str(a1.id))
    # Another shipment was not held back by shipment 100's failures.
    assert accepted.index(str(b1.id)) < accepted.index(str(a1.id))
    assert arrivals.count(str(a1.id)) == 3


def test_dead_after_the_retry_window_and_dead_ones_no_longer_block(tenant, receivers, settings):
    settings.WEBHOOKS_RETRY_WINDOW_S = 0.3
    receiver = receivers()
    receiver.verify = False
    receiver.fail_always = True
    endpoint, _ = make_endpoint(tenant, receiver.url)
    first = emit_status(tenant, shipment_id=300, status="picked_up")
    pump(lambda: deliveries(event_id=first.id)[0].status == "dead")
    [dead] = deliveries(event_id=first.id)
    assert dead.attempts >= 1 and dead.finished_at is not None and dead.last_status_code == 500

    receiver.fail_always = False
    second = emit_status(tenant, shipment_id=300, status="delivered")
    pump(lambda: deliveries(event_id=second.id)[0].status == "succeeded")
    assert deliveries(event_id=first.id)[0].status == "dead"  # not retried after death


def test_an_endpoint_failing_too_long_is_disabled_with_a_notice(
    tenant, receivers, settings, mailoutbox
):
    settings.WEBHOOKS_DISABLE_AFTER_S = 0.2
    settings.WEBHOOKS_DISABLE_MIN_FAILURES = 3
    receiver = receivers()
    receiver.verify = False
    receiver.fail_always = True
    endpoint, _ = make_endpoint(tenant, receiver.url)
    for shipment_id in range(400, 404):
        emit_status(tenant, shipment_id=shipment_id, status="delivered")

    def disabled():
        with dangerously_all_organizations():
            return not WebhookEndpoint.dangerously_unscoped.get(pk=endpoint.pk).enabled

    pump(disabled)
    with dangerously_all_organizations():
        endpoint = WebhookEndpoint.dangerously_unscoped.get(pk=endpoint.pk)
    assert endpoint.disabled_at is not None
    assert "failed attempts in a row" in endpoint.disabled_reason
    assert endpoint.consecutive_failures >= 3
    [mail] = mailoutbox
    assert "disabled" in mail.subject and endpoint.name in mail.subject
    assert set(mail.to) == {"owner@acme.example.com", "admin@acme.example.com"}
    assert endpoint.disabled_reason in mail.body

    # Disabled: nothing more is attempted; re-enabling resets the counters and sends the rest.
    tried = receiver.requests
    pump()
    assert receiver.requests == tried
    receiver.fail_always = False
    with organization_scope(tenant.organization):
        services.endpoint_enable(endpoint=endpoint)
    assert endpoint.consecutive_failures == 0 and endpoint.failing_since is None
    pump(lambda: len(receiver.accepted()) == 4)


def test_410_gone_disables_at_once(tenant, receivers, mailoutbox):
    receiver = receivers(status=410)
    receiver.verify = False
    endpoint, _ = make_endpoint(tenant, receiver.url)
    emit_status(tenant, shipment_id=500, status="delivered")
    pump()
    with dangerously_all_organizations():
        endpoint = WebhookEndpoint.dangerously_unscoped.get(pk=endpoint.pk)
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert len(mailoutbox) == 1


def test_replay_one_delivery_and_everything_since(tenant, receivers):
    receiver = receivers()
    receiver.verify = False
    endpoint, _ = make_endpoint(tenant, receiver.url)
    before = timezone.now() - timedelta(seconds=1)
    events = [emit_status(tenant, shipment_id=600, status=s) for s in ("a", "b", "c")]
    pump(lambda: len(receiver.accepted()) == 3)

    original = deliveries(event_id=events[0].id)[0]
    with organization_scope(tenant.organization):
        replay = services.delivery_replay(delivery=original)
    assert replay.seq == 1 and replay.replay_of_id == original.pk
    assert replay.message_id == original.message_id
    pump(lambda: len(receiver.accepted()) == 4)
    assert receiver.accepted()[-1].message_id == original.message_id

    with organization_scope(tenant.organization):
        count = services.endpoint_replay_since(endpoint=endpoint, since=before)
    assert count == 3
    pump(lambda: len(receiver.accepted()) == 7)
    assert [r.event_id for r in receiver.accepted()[4:]] == [str(e.id) for e in events]
    assert sorted(d.seq for d in deliveries(event_id=events[0].id)) == [0, 1, 2]


def test_test_ping_goes_to_one_endpoint(tenant, receivers):
    receiver = receivers()
    receiver.verify = False
    endpoint, _ = make_endpoint(tenant, receiver.url)
    make_endpoint(tenant, receiver.url.replace("/hooks", "/other"))
    with organization_scope(tenant.organization):
        services.endpoint_send_test(endpoint=endpoint)
    pump(lambda: len(receiver.accepted()) == 1)
    pump()
    [ping] = receiver.accepted()
    assert ping.event_type == "webhook.test"
    assert json.loads(ping.body)["payload"]["endpoint"] == endpoint.pk
