"""long_dwell through the sweep: standing at a stop longer than the P90 of its predicted
dwell (planned service time x learned factor, times the engine's P90 spread)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions.models import Alert, AlertState
from exceptions.rules.long_dwell import P90_OVER_MEDIAN
from exceptions.sweep import sweep_organization
from tests.factories import RouteFactory, StopFactory
from tracking.services.stops import stop_arrive, stop_complete

pytestmark = pytest.mark.django_db


def dwell_alerts():
    return list(Alert.objects.filter(kind="long_dwell").exclude(state=AlertState.RESOLVED))


@pytest.fixture
def route(scoped, tenant):
    return RouteFactory(organization=scoped, carrier=tenant.carrier, status="in_progress")


def test_fires_once_past_the_p90_and_clears_on_departure(scoped, route):
    stop = StopFactory(organization=scoped, route=route, planned_service_s=180)
    now = timezone.now()
    stop_arrive(stop=stop, actor=None, at=now - timedelta(minutes=20))

    sweep_organization(scoped, now)
    sweep_organization(scoped, now + timedelta(seconds=30))

    (alert,) = dwell_alerts()
    assert alert.subject_type == "stop" and alert.subject_id == str(stop.pk)
    assert alert.detail["limit_s"] == round(180 * P90_OVER_MEDIAN)
    assert Alert.objects.filter(kind="long_dwell").count() == 1

    stop.refresh_from_db()
    stop_complete(stop=stop, actor=None)
    sweep_organization(scoped, now + timedelta(minutes=1))
    assert dwell_alerts() == []


def test_quiet_within_the_p90(scoped, route):
    stop = StopFactory(organization=scoped, route=route, planned_service_s=180)
    now = timezone.now()
    limit = timedelta(seconds=180 * P90_OVER_MEDIAN)
    stop_arrive(stop=stop, actor=None, at=now - limit)  # exactly the limit: not "longer"

    sweep_organization(scoped, now)

    assert dwell_alerts() == []
