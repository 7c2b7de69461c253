"""Through the real Celery worker: a real service's status change reaches a real receiver,
signed; and with the broker unreachable while events happen, nothing is lost once it is back."""

from __future__ import annotations

import pytest
from kombu.exceptions import OperationalError

from control_tower.celery import app
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from tests.conftest import wait_for
from tests.factories import ShipmentFactory
from tests.webhooks.conftest import deliveries, emit_status, make_endpoint
from tracking.services.shipments import shipment_transition
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_status_change_reaches_the_receiver_signed(tenant, receivers, celery_worker):
    endpoint, secret = make_endpoint(
        tenant, "http://127.0.0.1:1/", event_types=["shipment.status_changed"]
    )
    receiver = receivers(secret=secret)
    with organization_scope(tenant.organization):
        from webhooks.services import endpoint_update

        endpoint_update(actor=None, endpoint=endpoint, url=receiver.url)
        shipment = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
        shipment_transition(shipment=shipment, to_status="at_hub", actor=None)
        shipment_transition(shipment=shipment, to_status="out_for_delivery", actor=None)

    wait_for(lambda: len(receiver.accepted()) == 2, timeout=20)
    got = receiver.accepted()
    assert all(r.verified for r in got)
    assert [r.event_type for r in got] == ["shipment.status_changed"] * 2
    assert [r.aggregate for r in got] == [f"shipment:{shipment.pk}"] * 2
    import json

    assert [json.loads(r.body)["payload"]["status"] for r in got] == ["at_hub", "out_for_delivery"]
    wait_for(lambda: {d.status for d in deliveries(endpoint_id=endpoint.pk)} == {"succeeded"})


def test_nothing_is_lost_while_the_broker_is_down(tenant, receivers, celery_worker, monkeypatch):
    receiver = receivers()
    receiver.verify = False
    make_endpoint(tenant, receiver.url, event_types=["shipment.status_changed"])

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis: Connection refused.")

    monkeypatch.setattr(app, "send_task", broker_down)
    events = [emit_status(tenant, shipment_id=i, status="delivered") for i in range(700, 720)]
    # The writes committed; no relay or dispatcher task could be queued.
    with dangerously_all_organizations():
        assert WebhookDelivery.dangerously_unscoped.count() == 0
    assert receiver.requests == 0

    monkeypatch.undo()  # the broker is back: beat's next runs queue the relay and dispatcher
    app.send_task("control_tower.events_relay")
    wait_for(lambda: len(deliveries()) == 20, timeout=20)

    def beat():  # what beat does every 5 s, here every poll
        app.send_task("webhooks.dispatch_due")
        return len(receiver.accepted()) == 20

    wait_for(beat, timeout=20, interval=0.5)
    assert {r.event_id for r in receiver.accepted()} == {str(e.id) for e in events}
