"""One rule end to end through the real relay: a committed failed stop reaches the
failed_attempt subscriber in the Celery worker (enqueued on commit, real Redis broker), which
raises the alert; the sweep task itself runs in the worker too."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from control_tower.celery import app
from control_tower.tenancy.scope import organization_scope
from exceptions.models import Alert
from exceptions.tasks import EXCEPTIONS_SWEEP
from tests.conftest import wait_for
from tests.factories import RouteFactory, stop_with_shipments
from tracking.services.stops import stop_fail

pytestmark = pytest.mark.django_db(transaction=True)


def _alerts(org, kind):
    with organization_scope(org):
        return list(Alert.objects.filter(kind=kind))


def test_failed_stop_reaches_the_rule_through_the_worker(tenant, celery_worker):
    org = tenant.organization
    with organization_scope(org):
        route = RouteFactory(organization=org, carrier=tenant.carrier, status="in_progress")
        stop = stop_with_shipments(route=route, count=1)
        shipment = stop.shipments.get()
        stop_fail(stop=stop, reason="refused", actor=None)  # commits: the relay is enqueued

    (alert,) = wait_for(lambda: _alerts(org, "failed_attempt"), timeout=20)
    assert alert.subject_id == str(shipment.pk) and alert.detail["reason"] == "refused"


def test_the_sweep_task_runs_in_the_worker(tenant, celery_worker):
    org = tenant.organization
    with organization_scope(org):
        route = RouteFactory(
            organization=org,
            carrier=tenant.carrier,
            planned_start=timezone.now() - timedelta(minutes=45),
        )

    app.send_task(EXCEPTIONS_SWEEP)

    (alert,) = wait_for(lambda: _alerts(org, "route_not_started"), timeout=20)
    assert alert.subject_id == str(route.pk)
