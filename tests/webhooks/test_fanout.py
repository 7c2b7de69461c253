"""The fan-out from the outbox: one delivery per matching endpoint, idempotent, carrier
filter, backfill passed over."""

from __future__ import annotations

from control_tower.events import make_event
from control_tower.events.relay import relay_pending
from control_tower.tenancy.scope import organization_scope
from tests.factories import CarrierFactory
from tests.webhooks.conftest import deliveries, emit_status, make_endpoint
from webhooks.fanout import fan_out, message_id


def test_one_delivery_per_matching_endpoint_with_the_envelope(tenant):
    every, _ = make_endpoint(tenant, "https://a.example.com/h", event_types=["*"])
    shipments, _ = make_endpoint(
        tenant, "https://b.example.com/h", event_types=["shipment.status_changed"]
    )
    alerts, _ = make_endpoint(tenant, "https://c.example.com/h", event_types=["alert.*"])
    event = emit_status(tenant, shipment_id=41, status="in_transit")
    relay_pending(budget_s=5)

    made = deliveries(event_id=event.id)
    assert {d.endpoint_id for d in made} == {every.pk, shipments.pk}
    for delivery in made:
        assert delivery.payload == event.as_dict()
        assert delivery.ordering_key == "shipment:41"
        assert delivery.status == "pending"
        assert delivery.message_id == message_id(delivery.endpoint_id, event.id)
    assert not deliveries(endpoint_id=alerts.pk)


def test_the_same_event_handled_twice_makes_one_delivery(tenant):
    endpoint, _ = make_endpoint(tenant, "https://a.example.com/h")
    event = make_event(
        "shipment.status_changed",
        organization_id=tenant.organization.pk,
        carrier_id=None,
        aggregate_id=7,
        payload={"id": 7, "status": "delivered"},
    )
    with organization_scope(tenant.organization):
        fan_out(event)
        fan_out(event)  # the relay re-delivers after a crash between handling and marking
    assert len(deliveries(endpoint_id=endpoint.pk)) == 1


def test_carrier_bound_endpoints_get_only_their_carriers_events(tenant):
    other_carrier = CarrierFactory(organization=tenant.organization, code="other")
    bound, _ = make_endpoint(tenant, "https://a.example.com/h", carrier_id=tenant.carrier.pk)
    mine = emit_status(tenant, shipment_id=1, status="delivered", carrier_id=tenant.carrier.pk)
    theirs = emit_status(tenant, shipment_id=2, status="delivered", carrier_id=other_carrier.pk)
    nobody = emit_status(tenant, shipment_id=3, status="delivered", carrier_id=None)
    relay_pending(budget_s=5)
    assert [d.event_id for d in deliveries(endpoint_id=bound.pk)] == [mine.id]
    assert theirs.id and nobody.id


def test_backfilled_history_and_disabled_endpoints_get_nothing(tenant, other_tenant):
    endpoint, _ = make_endpoint(tenant, "https://a.example.com/h")
    off, _ = make_endpoint(tenant, "https://b.example.com/h")
    with organization_scope(tenant.organization):
        from webhooks.services import endpoint_disable

        endpoint_disable(endpoint=off, reason="test")
    foreign, _ = make_endpoint(other_tenant, "https://c.example.com/h")
    emit_status(tenant, shipment_id=5, status="delivered", backfill=True)
    live = emit_status(tenant, shipment_id=5, status="delivered")
    relay_pending(budget_s=5)
    assert [d.event_id for d in deliveries(endpoint_id=endpoint.pk)] == [live.id]
    assert not deliveries(endpoint_id=off.pk)
    assert not deliveries(endpoint_id=foreign.pk)  # another organization's events never
