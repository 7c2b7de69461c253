"""`enqueue_on_commit` queues a task once per transaction for the same arguments."""

import pytest
from django.db import transaction

from control_tower.tenancy.enqueue import enqueue_on_commit
from tracking.tasks import eta_update_route

pytestmark = pytest.mark.django_db


def test_the_same_task_is_queued_once_per_transaction(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        enqueue_on_commit(eta_update_route, organization_id=1, route_id=7)
        enqueue_on_commit(eta_update_route, organization_id=1, route_id=7)
        enqueue_on_commit(eta_update_route, organization_id=1, route_id=8)
    assert len(callbacks) == 2


def test_a_rolled_back_savepoint_does_not_swallow_a_later_enqueue(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():
                enqueue_on_commit(eta_update_route, organization_id=1, route_id=7)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        enqueue_on_commit(eta_update_route, organization_id=1, route_id=7)
    assert len(callbacks) == 1
