"""off_route through the sweep: far from the planned geometry for longer than `off_route_s`,
from fresh, unflagged fixes only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.gis.geos import LineString
from django.utils import timezone

from exceptions.models import Alert, AlertState
from exceptions.sweep import sweep_organization
from tests.exceptions.test_rule_sweep import fix, running_route
from tracking.models import PingFlag

pytestmark = pytest.mark.django_db

# The planned line runs east-west along latitude -29.95; OFF is about 440 m north of it.
LINE = LineString((-71.32, -29.95), (-71.28, -29.95), srid=4326)
ON = (-71.30, -29.95)
OFF = (-71.30, -29.946)


def off_alerts():
    return list(Alert.objects.filter(kind="off_route").exclude(state=AlertState.RESOLVED))


def every_20_s(device, now, seconds, where):
    for s in range(seconds, -1, -20):
        fix(device, now - timedelta(seconds=s), where)


def test_fires_once_after_the_duration_and_clears_back_on_the_line(scoped, tenant):
    route, device = running_route(scoped, tenant.carrier, planned_geometry=LINE)
    now = timezone.now()
    every_20_s(device, now - timedelta(seconds=200), 100, ON)
    every_20_s(device, now, 160, OFF)

    sweep_organization(scoped, now)
    sweep_organization(scoped, now + timedelta(seconds=10))

    (alert,) = off_alerts()
    assert alert.subject_id == str(route.pk) and alert.detail["distance_m"] > 400
    assert Alert.objects.filter(kind="off_route").count() == 1

    fix(device, now + timedelta(seconds=20), ON)
    sweep_organization(scoped, now + timedelta(seconds=30))
    assert off_alerts() == []


def test_quiet_before_the_duration_for_outliers_and_without_a_line(scoped, tenant):
    _short, short = running_route(scoped, tenant.carrier, planned_geometry=LINE)
    _outlier, outlier = running_route(scoped, tenant.carrier, planned_geometry=LINE)
    _no_line, no_line = running_route(scoped, tenant.carrier)
    now = timezone.now()
    every_20_s(short, now - timedelta(seconds=100), 200, ON)
    every_20_s(short, now, 80, OFF)  # off for 80 s, not 120
    every_20_s(outlier, now, 300, ON)
    fix(outlier, now - timedelta(seconds=5), OFF, flags=PingFlag.IMPOSSIBLE_SPEED)
    every_20_s(no_line, now, 300, OFF)

    sweep_organization(scoped, now)

    assert off_alerts() == []
