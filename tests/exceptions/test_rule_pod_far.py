"""pod_far through the outbox relay: a POD away from the address raises one alert that only a
person resolves."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from control_tower.events import catalog, emit, relay
from exceptions.models import Alert, AlertState
from exceptions.sweep import sweep_organization
from tests.factories import ShipmentFactory

pytestmark = pytest.mark.django_db

_pods = iter(range(1, 10_000))


def capture(shipment, *, distance_m, outside):
    """Emit `pod.captured` as the proof-of-delivery service does, then relay."""
    pod = SimpleNamespace(
        pk=next(_pods),
        organization_id=shipment.organization_id,
        stop_id=None,
        device_id=None,
        recipient_name="Ana",
        pin_verified=False,
        captured_at=timezone.now(),
        location=Point(-71.27, -29.91, srid=4326),
        distance_m=distance_m,
        outside_geofence=outside,
        outcome="delivered",
        failure_reason="",
        left_at="front_door",
    )
    emit(catalog.pod_captured(pod, shipment=shipment))
    relay.relay_pending()


@pytest.fixture
def shipment(scoped, tenant):
    return ShipmentFactory(organization=scoped, carrier=tenant.carrier, status="delivered")


def test_far_pod_raises_once_and_never_auto_clears(scoped, shipment):
    capture(shipment, distance_m=420.0, outside=True)
    capture(shipment, distance_m=420.0, outside=True)  # redelivered event: still one
    sweep_organization(scoped)

    (alert,) = Alert.objects.filter(kind="pod_far")
    assert alert.state == AlertState.OPEN
    assert alert.subject_type == "shipment" and alert.subject_id == str(shipment.pk)
    assert alert.detail["distance_m"] == 420.0 and alert.shipment_id == shipment.pk


def test_distance_beyond_threshold_raises_without_the_geofence_flag(shipment, scoped):
    limit = scoped.pod_geofence_m
    capture(shipment, distance_m=limit + 1, outside=False)
    assert Alert.objects.filter(kind="pod_far").count() == 1


def test_quiet_at_the_boundary_and_without_a_distance(shipment, scoped, tenant):
    capture(shipment, distance_m=float(scoped.pod_geofence_m), outside=False)
    other = ShipmentFactory(organization=scoped, carrier=tenant.carrier, status="delivered")
    capture(other, distance_m=None, outside=False)
    assert Alert.objects.filter(kind="pod_far").count() == 0
