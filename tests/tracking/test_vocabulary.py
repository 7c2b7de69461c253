"""The tracking app's shared vocabulary: one distance, the stop and route status groups, the
custodian names of the custody chain."""

import pytest
from django.contrib.gis.geos import Point

from tracking.geo import distance_m, point_distance_m
from tracking.models import (
    ACTIVE_ROUTE_STATUSES,
    ATTEMPTED_STOP_STATUSES,
    CLOSED_ROUTE_STATUSES,
    DONE_STOP_STATUSES,
    OPEN_STOP_STATUSES,
    UNVISITED_STOP_STATUSES,
    RouteStatus,
    StopStatus,
)
from tracking.services.custody import Custodian

LA_SERENA = (-29.9027, -71.2519)
COQUIMBO = (-29.9533, -71.3436)


def test_one_distance_whatever_the_caller_holds():
    meters = distance_m(*LA_SERENA, *COQUIMBO)
    assert meters == pytest.approx(10_500, rel=0.02)
    serena = Point(LA_SERENA[1], LA_SERENA[0], srid=4326)
    coquimbo = Point(COQUIMBO[1], COQUIMBO[0], srid=4326)
    assert point_distance_m(serena, coquimbo) == meters
    assert distance_m(*COQUIMBO, *LA_SERENA) == pytest.approx(meters)
    assert distance_m(*LA_SERENA, *LA_SERENA) == 0
    # A thousandth of a degree of latitude is ~111 m.
    assert distance_m(0, 0, 0.001, 0) == pytest.approx(111.2, abs=0.1)


def test_every_stop_status_is_open_or_closed_and_done_counts_progress():
    assert set(OPEN_STOP_STATUSES) | set(DONE_STOP_STATUSES) | {StopStatus.CANCELLED} == set(
        StopStatus
    )
    assert not set(OPEN_STOP_STATUSES) & set(DONE_STOP_STATUSES)
    assert set(ATTEMPTED_STOP_STATUSES) < set(DONE_STOP_STATUSES)
    assert not set(UNVISITED_STOP_STATUSES) & set(ATTEMPTED_STOP_STATUSES)
    assert set(ACTIVE_ROUTE_STATUSES) | set(CLOSED_ROUTE_STATUSES) == set(RouteStatus)
    assert not set(ACTIVE_ROUTE_STATUSES) & set(CLOSED_ROUTE_STATUSES)


def test_custodians_are_spelled_one_way():
    assert Custodian.driver(7, "Ana Rojas") == "driver:7:Ana Rojas"
    assert Custodian.vehicle(3, "AB-CD-12") == "vehicle:3:AB-CD-12"
    assert Custodian.carrier("andes3pl") == "carrier:andes3pl"
    assert Custodian.carrier(None) == "carrier"
    assert Custodian.hub("LSR") == "hub:LSR"
    assert Custodian.hub(None) == "hub"
    assert Custodian.recipient("Juan Pérez") == "recipient:Juan Pérez"
    assert Custodian.SHIPPER == "shipper"
