"""Periodic runs do not pile up behind a busy worker: every beat entry expires after its own
interval (control_tower/settings.py), and a real worker drops a run that waited that long."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.signals import task_prerun, task_revoked
from django.conf import settings
from django.utils import timezone

from tests.conftest import wait_for


def test_every_beat_entry_expires_after_its_interval():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["options"]["expires"] == entry["schedule"], name


@pytest.mark.django_db(transaction=True)
def test_a_worker_drops_a_periodic_run_that_waited_past_its_interval(celery_worker):
    from control_tower.celery import app

    dropped, ran = [], []

    def on_revoked(request=None, expired=False, **_):
        dropped.append((request.task, expired))

    def on_prerun(sender=None, **_):
        ran.append(sender.name)

    task_revoked.connect(on_revoked, weak=False)
    task_prerun.connect(on_prerun, weak=False)
    try:
        waited = timezone.now() - timedelta(seconds=1)  # as if queued an interval ago
        app.send_task("webhooks.dispatch_due", expires=waited)
        wait_for(lambda: dropped, what="the expired run dropped")
        assert dropped == [("webhooks.dispatch_due", True)]
        assert "webhooks.dispatch_due" not in ran
    finally:
        task_revoked.disconnect(on_revoked)
        task_prerun.disconnect(on_prerun)
