"""What the live ETAs learn from history: travel factors by local hour and calibrated windows,
per organization (cold start, idempotent retraining, tenancy, the admin pages)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import (
    EtaCalibrationFactory,
    EtaModelFactory,
    HubFactory,
    RouteFactory,
    StopFactory,
    completed_route,
)
from tracking.eta.calibration import calibrate
from tracking.eta.engine import (
    METHOD,
    METHOD_LEARNED,
    PRIOR_TRAVEL_FACTOR,
    calibrated_windows,
    route_etas,
    window_bucket,
)
from tracking.eta.learned import current_calibration, current_travel_by_hour
from tracking.eta.learning import train
from tracking.models import EtaCalibration, EtaModel

pytestmark = pytest.mark.django_db

HUB = (-71.2489, -29.9045)
POINTS = [
    (-71.2450, -29.9000),
    (-71.2400, -29.8960),
    (-71.2350, -29.8930),
    (-71.2300, -29.8900),
    (-71.2260, -29.8950),
    (-71.2300, -29.9000),
    (-71.2350, -29.9040),
    (-71.2400, -29.9080),
]
RUSH_HOUR_RATIO = 1.6


def rush_at_eight(index: int, start: datetime) -> float:
    """1.6× free flow during 08:00–09:00 local, free flow otherwise, ±8 % from leg to leg."""
    noise = 1 + 0.08 * ((index % 3) - 1)
    hour = start.astimezone(ZoneInfo("America/Santiago")).hour
    return (RUSH_HOUR_RATIO if hour == 8 else 1.0) * noise


def local(day, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo("America/Santiago"))


def build_history(tenant):
    """Three morning routes (24 legs in the 8 o'clock hour) and one afternoon route (8 legs in
    the 14 o'clock hour: too few, that hour keeps the prior)."""
    org = tenant.organization
    hub = HubFactory(organization=org, location=Point(*HUB, srid=4326))
    first_day = timezone.localdate() - timedelta(days=5)
    for back, hour in ((0, 8), (1, 8), (2, 8), (3, 14)):
        completed_route(
            organization=org,
            carrier=tenant.carrier,
            hub=hub,
            start=local(first_day + timedelta(days=back), hour),
            points=POINTS,
            travel_ratio=rush_at_eight,
        )
    return hub


def open_route(tenant, hub=None):
    org = tenant.organization
    hub = hub or HubFactory(organization=org, location=Point(*HUB, srid=4326))
    route = RouteFactory(organization=org, carrier=tenant.carrier, hub=hub, status="in_progress")
    for sequence, (lon, lat) in enumerate(POINTS[:4], start=1):
        StopFactory(
            organization=org, route=route, sequence=sequence, location=Point(lon, lat, srid=4326)
        )
    return route


def test_hourly_factors_are_learned_and_thin_hours_keep_the_prior(tenant):
    build_history(tenant)
    org = tenant.organization
    with organization_scope(org):
        assert current_travel_by_hour(org) is None  # cold start
        model = train(org)
        assert model is not None and model.legs == 32
        assert set(model.travel_by_hour) == {"8"}  # 14 o'clock: 8 legs < 20
        assert model.travel_by_hour["8"] == pytest.approx(RUSH_HOUR_RATIO, rel=0.05)
        assert model.dwell_factor == pytest.approx(120 / 180, abs=1e-3)  # 2 min, 3 planned
        assert current_travel_by_hour(org) == model.travel_by_hour
        # Retraining on the same history gives back the same model.
        assert train(org).pk == model.pk
        assert EtaModel.objects.count() == 1


def test_the_live_engine_drives_a_congested_hour_slower_than_the_prior(tenant, other_tenant):
    hub = build_history(tenant)
    now = local(timezone.localdate(), 8, 30)
    with organization_scope(tenant.organization):
        train(tenant.organization)
        ours = route_etas(open_route(tenant, hub), now=now)
    # Another organization with the same streets and no history: the cold-start priors.
    with organization_scope(other_tenant.organization):
        assert current_travel_by_hour(other_tenant.organization) is None
        theirs = route_etas(open_route(other_tenant), now=now)
    assert {e.method for e in ours} == {METHOD_LEARNED}
    assert {e.method for e in theirs} == {METHOD}
    to_first = (ours[0].eta - now).total_seconds()
    to_first_prior = (theirs[0].eta - now).total_seconds()
    # The learned tables: the rush hour's 1.6, shrunk a little toward the organization's
    # average on a history this thin (24 legs in that hour).
    rush = to_first_prior * 1.6 / PRIOR_TRAVEL_FACTOR
    assert 0.9 * rush <= to_first <= 1.02 * rush
    assert ours[0].eta > theirs[0].eta
    for etas in (ours, theirs):
        assert all(now <= e.earliest <= e.eta <= e.latest for e in etas)


def test_windows_are_calibrated_from_history_and_retraining_is_idempotent(tenant):
    hub = build_history(tenant)
    org = tenant.organization
    now = local(timezone.localdate(), 8, 30)
    with organization_scope(org):
        train(org)
        route = open_route(tenant, hub)
        uncalibrated = route_etas(route, now=now)
        calibration = calibrate(org)
        assert calibration is not None and calibration.version == 1
        assert "0-10" in calibration.buckets  # enough replayed predictions there
        assert all(b["n"] >= 50 for b in calibration.buckets.values())
        assert calibrate(org).pk == calibration.pk
        assert EtaCalibration.objects.count() == 1
        calibrated = route_etas(route, now=now)
    offsets = current_calibration_of(org)
    for before, after in zip(uncalibrated, calibrated, strict=True):
        assert after.eta == before.eta  # calibration moves windows, not the estimate
        bucket = window_bucket((after.eta - now).total_seconds() / 60)
        if bucket in offsets:
            low_s, high_s = offsets[bucket]
            assert after.earliest == max(now, after.eta + timedelta(seconds=min(low_s, -120)))
            assert after.latest == after.eta + timedelta(seconds=max(high_s, 120))
        else:  # too few samples at that horizon: the prior window stays
            assert (after.earliest, after.latest) == (before.earliest, before.latest)
    assert any(window_bucket((e.eta - now).total_seconds() / 60) in offsets for e in calibrated)


def current_calibration_of(org):
    with organization_scope(org):
        return current_calibration(org)


def test_the_nightly_retrain_learns_per_organization(tenant, other_tenant):
    from tracking.tasks import eta_retrain

    build_history(tenant)
    assert eta_retrain.run() == 1  # only the organization with history
    assert eta_retrain.run() == 1  # idempotent: nothing new
    assert EtaModel.dangerously_unscoped.count() == 1
    assert EtaCalibration.dangerously_unscoped.count() == 1
    with organization_scope(other_tenant.organization):
        assert current_travel_by_hour(other_tenant.organization) is None
        assert current_calibration(other_tenant.organization) is None
        assert not EtaModel.objects.exists() and not EtaCalibration.objects.exists()
    with organization_scope(tenant.organization):
        assert EtaModel.objects.get().organization_id == tenant.organization.pk


def test_an_unvisited_stop_is_never_expected_before_now(tenant):
    org = tenant.organization
    # A calibration saying "often much earlier than the estimate" must not open the window
    # into the past.
    EtaCalibrationFactory(
        organization=org,
        buckets={
            bucket: {"p10_min": -90.0, "p90_min": 5.0, "n": 500}
            for bucket in ("0-15", "15-30", "30-60", "60-120", "120+")
        },
    )
    now = timezone.now()
    with organization_scope(org):
        etas = route_etas(open_route(tenant), now=now)
    assert etas and all(now <= e.earliest <= e.eta <= e.latest for e in etas)
    assert etas[0].earliest == now
    # The pure function too: even an ETA already due stays at now at the earliest.
    windows = calibrated_windows(
        [(now, now, now + timedelta(minutes=3))], now, {"0-15": (-600.0, 60.0)}
    )
    assert windows == [(now, now, now + timedelta(seconds=120))]


def test_admin_shows_only_the_organizations_models(tenant, other_tenant, client):
    ours = EtaModelFactory(organization=tenant.organization)
    theirs = EtaModelFactory(organization=other_tenant.organization)
    our_calibration = EtaCalibrationFactory(organization=tenant.organization)
    their_calibration = EtaCalibrationFactory(organization=other_tenant.organization)
    client.force_login(tenant.user(Role.OWNER))
    for kind, mine, other in (
        ("etamodel", ours, theirs),
        ("etacalibration", our_calibration, their_calibration),
    ):
        listing = client.get(f"/admin/tracking/{kind}/")
        assert listing.status_code == 200
        assert f"/admin/tracking/{kind}/{mine.pk}/change/".encode() in listing.content
        assert f"/admin/tracking/{kind}/{other.pk}/change/".encode() not in listing.content
        page = client.get(f"/admin/tracking/{kind}/{mine.pk}/change/")
        assert page.status_code == 200 and b"Save" not in page.content
        assert client.get(f"/admin/tracking/{kind}/{other.pk}/change/").status_code in (302, 404)
        assert client.post(f"/admin/tracking/{kind}/{mine.pk}/delete/").status_code == 403
