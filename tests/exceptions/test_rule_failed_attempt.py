"""failed_attempt through the outbox relay: a failed stop raises one alert per shipment; a
re-attempt (the shipment's next stop moves) or a reschedule (linked to a new stop) clears it."""

from __future__ import annotations

import pytest

from control_tower.events import backfill, relay
from control_tower.events.models import OutboxEvent
from exceptions.models import Alert, AlertState
from tests.factories import RouteFactory, StopFactory, stop_with_shipments
from tracking.services.stop_shipments import stop_shipments_set
from tracking.services.stops import stop_arrive, stop_complete, stop_fail

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(scoped, tenant):
    route = RouteFactory(organization=scoped, carrier=tenant.carrier, status="in_progress")
    stop = stop_with_shipments(route=route, count=1)
    stop_fail(stop=stop, reason="not_home", actor=None)
    relay.relay_pending()
    return stop, stop.shipments.get()


def unresolved():
    return list(Alert.objects.filter(kind="failed_attempt").exclude(state=AlertState.RESOLVED))


def test_fires_once_per_shipment_with_the_reason(failed):
    stop, shipment = failed
    relay.relay_pending()  # nothing new: still one alert

    (alert,) = unresolved()
    assert alert.subject_type == "shipment" and alert.subject_id == str(shipment.pk)
    assert alert.detail["reason"] == "not_home" and alert.stop_id == stop.pk
    assert alert.carrier_id == stop.route.carrier_id


def test_other_status_changes_raise_nothing(scoped, tenant):
    route = RouteFactory(organization=scoped, carrier=tenant.carrier, status="in_progress")
    stop = stop_with_shipments(route=route, count=2)
    stop_arrive(stop=stop, actor=None)
    stop_complete(stop=stop, actor=None)
    relay.relay_pending()

    assert Alert.objects.filter(kind="failed_attempt").count() == 0


def test_rescheduled_to_a_new_stop_clears(failed, scoped, tenant):
    _stop, shipment = failed
    tomorrow = RouteFactory(organization=scoped, carrier=tenant.carrier)
    retry = StopFactory(organization=scoped, route=tomorrow)

    stop_shipments_set(stop=retry, shipments=[shipment], actor=None)
    relay.relay_pending()

    assert unresolved() == []
    (alert,) = Alert.objects.filter(kind="failed_attempt")
    assert alert.auto_resolved and alert.resolution_note == "rescheduled"


def test_reattempt_at_the_next_stop_clears(failed, scoped, tenant):
    _stop, shipment = failed
    again = RouteFactory(organization=scoped, carrier=tenant.carrier, status="in_progress")
    retry = StopFactory(organization=scoped, route=again)
    # Linked without the service (no route.changed): the next stop's status change clears it.
    from tracking.models import StopShipment

    StopShipment.objects.create(organization=scoped, stop=retry, shipment=shipment)
    assert len(unresolved()) == 1

    stop_arrive(stop=retry, actor=None)
    relay.relay_pending()

    assert unresolved() == []


def test_history_recorded_after_the_fact_raises_nothing(scoped, tenant):
    """A past day imported through the services (`backfill()`, as load_demo's history does)
    keeps its events for reports but is not news: no alert."""
    route = RouteFactory(organization=scoped, carrier=tenant.carrier, status="in_progress")
    stop = stop_with_shipments(route=route, count=1)
    with backfill():
        stop_fail(stop=stop, reason="not_home", actor=None)
    relay.relay_pending()

    assert Alert.objects.filter(kind="failed_attempt").count() == 0
    assert OutboxEvent.objects.filter(type="stop.status_changed", backfill=True).exists()
