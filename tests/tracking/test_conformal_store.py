"""The conformal windows fed from the ETAs really shown (tracking/eta/conformal_store.py):
stored as a calibration the live ETAs read, over the nightly one, per organization."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.utils import timezone

from control_tower.tenancy.scope import organization_scope
from tests.factories import EtaCalibrationFactory, RouteFactory
from tests.sla.test_eta_accuracy import reached_stop
from tracking.eta.conformal_store import conformal_calibrate, shown_residuals
from tracking.eta.learned import current_calibration
from tracking.models import EtaCalibration

pytestmark = pytest.mark.django_db


def _history(organization, *, stops: int, bias_min: float, seed: int):
    """`stops` arrivals over the last two days, each with one revision computed 30 min before
    it whose ETA was `bias_min` early on average (residual ~ N(bias, 3 min))."""
    rng = random.Random(seed)
    now = timezone.now()
    route = RouteFactory(organization=organization, date=now.date())
    for index in range(stops):
        arrival = now - dt.timedelta(hours=40) + dt.timedelta(minutes=20 * index)
        offset = -rng.gauss(bias_min, 3.0)  # ETA = arrival + offset
        reached_stop(route, arrival, [(30, offset, 4)], sequence=index + 1)
    return now


def test_the_stream_is_each_shown_revision_once_bucketed_by_its_predicted_horizon(tenant):
    organization = tenant.organization
    with organization_scope(organization):
        now = _history(organization, stops=3, bias_min=0.0, seed=1)
        samples = shown_residuals(organization, since=now - dt.timedelta(days=3), until=now)
    # One revision per stop, on show at the 22.5 and 7.5 min checkpoints: counted once, in
    # the window bucket of what it predicted (~30 min ahead).
    assert len(samples) == 3
    assert {bucket for bucket, _ in samples} <= {"20-30", "30-45"}


def test_windows_follow_the_shown_errors_and_override_the_nightly_buckets(tenant, other_tenant):
    organization = tenant.organization
    with organization_scope(organization):
        EtaCalibrationFactory(
            organization=organization,
            buckets={
                "15-30": {"p10_min": -1.0, "p90_min": 1.0, "n": 500},
                "120+": {"p10_min": -20.0, "p90_min": 30.0, "n": 80},
            },
        )
        now = _history(organization, stops=120, bias_min=6.0, seed=2)
        stored = conformal_calibrate(organization, now=now)
        again = conformal_calibrate(organization, now=now)
        offsets = current_calibration(organization)
    assert stored is not None and again.pk == stored.pk  # the same history: no new version
    window = stored.buckets["20-30"]
    # The ETAs (computed 30 min before, predicting ~24 min) were ~6 min early: the window
    # sits after the ETA, about ±1.28 × 3 min wide.
    assert 1.0 < window["p10_min"] < 4.5 and 7.5 < window["p90_min"] < 11.0
    assert "alpha" in window and window["n"] > 100 and stored.samples == 120
    # The nightly's buckets stay where the conformal has none (older, coarser keys included).
    assert stored.buckets["120+"] == {"p10_min": -20.0, "p90_min": 30.0, "n": 80}
    assert stored.buckets["15-30"] == {"p10_min": -1.0, "p90_min": 1.0, "n": 500}
    assert offsets["20-30"] == (window["p10_min"] * 60, window["p90_min"] * 60)
    # Another organization's history is not theirs, and they have none.
    with organization_scope(other_tenant.organization):
        assert conformal_calibrate(other_tenant.organization, now=now) is None
        assert not EtaCalibration.objects.filter(organization=other_tenant.organization).exists()


def test_too_few_arrivals_store_nothing(tenant):
    organization = tenant.organization
    with organization_scope(organization):
        now = _history(organization, stops=10, bias_min=0.0, seed=3)
        assert conformal_calibrate(organization, now=now) is None


def test_the_command_stores_and_lists_the_windows(tenant):
    from io import StringIO

    from django.core.management import call_command

    organization = tenant.organization
    with organization_scope(organization):
        _history(organization, stops=80, bias_min=2.0, seed=4)
    out = StringIO()
    call_command("eta_conformal", "--org", organization.slug, stdout=out)
    text = out.getvalue()
    assert "ETA calibration v1 (80 ETAs shown)" in text
    assert "conformal, alpha" in text
    with organization_scope(organization):
        assert EtaCalibration.objects.filter(organization=organization).count() == 1


def test_the_scheduled_task_covers_every_active_organization_in_its_own_scope(tenant, other_tenant):
    from tracking.tasks import eta_conformal

    with organization_scope(tenant.organization):
        _history(tenant.organization, stops=80, bias_min=1.0, seed=5)
    assert eta_conformal.apply().get() == 1  # the other organization has no arrivals
    with organization_scope(tenant.organization):
        assert EtaCalibration.objects.filter(organization=tenant.organization).count() == 1
    with organization_scope(other_tenant.organization):
        assert not EtaCalibration.objects.filter(organization=other_tenant.organization).exists()
