"""ETAs of open stops: the network estimator on a new tenant, its invariants, storage with
material-change revisions and events, the triggers (stop events through a real Celery worker,
the sweep), and tenancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.gis.geos import Point
from django.utils import timezone

from control_tower.events.models import OutboxEvent
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.conftest import wait_for
from tests.factories import (
    ETA_HUB,
    ETA_POINTS,
    running_route_with_phone,
)
from tracking.eta.engine import route_etas
from tracking.eta.recompute import route_eta_update, routes_needing_eta
from tracking.ingest.fixes import Fix
from tracking.ingest.pings import pings_ingest
from tracking.models import EtaRevision
from tracking.services import stop_complete

HUB, POINTS = ETA_HUB, ETA_POINTS


def build_route(tenant):
    route, device, _token = running_route_with_phone(tenant)
    return route, device


@pytest.mark.django_db
def test_a_new_tenant_gets_network_etas_in_order_and_never_before_now(tenant):
    route, _device = build_route(tenant)
    now = timezone.now()
    with organization_scope(tenant.organization):
        etas = route_etas(route, now=now)
        expected = list(route.stops.order_by("sequence").values_list("id", flat=True))
    assert [e.stop_id for e in etas] == expected
    assert all(e.earliest >= now for e in etas)
    assert all(e.earliest <= e.eta <= e.latest for e in etas)
    arrivals = [e.eta for e in etas]
    assert arrivals == sorted(arrivals) and arrivals[0] > now
    widths = [(e.latest - e.earliest).total_seconds() for e in etas]
    assert widths == sorted(widths)  # uncertainty grows along the route


@pytest.mark.django_db
def test_the_vehicles_position_moves_the_etas(tenant):
    route, device = build_route(tenant)
    now = timezone.now()
    with organization_scope(tenant.organization):
        from_hub = route_etas(route, now=now)
        # The van reports at the door of stop 1: it is about to arrive there.
        pings_ingest(
            device=device,
            source="native",
            received_at=now,
            fixes=[
                Fix(
                    fix_time=now - timedelta(seconds=5),
                    lat=POINTS[0][1],
                    lon=POINTS[0][0],
                    accuracy_m=5,
                ),
            ],
        )
        at_first = route_etas(route, now=now)
    assert at_first[0].eta < from_hub[0].eta
    assert at_first[0].eta - now < timedelta(minutes=2)


@pytest.mark.django_db
def test_late_and_out_of_order_pings_do_not_make_etas_jump_back(tenant):
    route, device = build_route(tenant)
    now = timezone.now()
    with organization_scope(tenant.organization):
        pings_ingest(
            device=device,
            source="native",
            received_at=now,
            fixes=[Fix(fix_time=now - timedelta(seconds=5), lat=POINTS[1][1], lon=POINTS[1][0])],
        )
        after_new = route_etas(route, now=now)
        # A late fix from back at the hub arrives afterwards.
        pings_ingest(
            device=device,
            source="native",
            received_at=now,
            fixes=[Fix(fix_time=now - timedelta(minutes=20), lat=HUB[1], lon=HUB[0])],
        )
        assert route_etas(route, now=now) == after_new


@pytest.mark.django_db
def test_storing_keeps_revisions_only_for_material_changes(
    tenant, django_capture_on_commit_callbacks
):
    route, _device = build_route(tenant)
    now = datetime.now(UTC)
    with organization_scope(tenant.organization):
        with django_capture_on_commit_callbacks() as published:
            assert route_eta_update(route, now=now) == 3
        # The outbox relay's enqueue, and one live delivery for the three stop.eta_changed
        # events (their messages go to Redis together).
        assert len(published) == 2
        assert [len(c.events) for c in published if hasattr(c, "events")] == [3]
        assert OutboxEvent.objects.filter(type="stop.eta_changed").count() == 3
        assert EtaRevision.objects.count() == 3
        assert route_eta_update(route, now=now + timedelta(seconds=5)) == 0  # ~same windows
        assert EtaRevision.objects.count() == 3
        stop = route.stops.get(sequence=1)
        assert stop.eta_updated_at == now + timedelta(seconds=5)
        assert route_eta_update(route, now=now + timedelta(minutes=10)) == 3  # clock moved on
        assert EtaRevision.objects.count() == 6


@pytest.mark.django_db
def test_a_delivered_stop_leaves_the_eta_set(tenant):
    route, _device = build_route(tenant)
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        first = route.stops.get(sequence=1)
        stop_complete(stop=first, actor=actor)
        assert first.pk not in {e.stop_id for e in route_etas(route)}


@pytest.mark.django_db(transaction=True)
def test_a_stop_event_recomputes_the_route_on_a_real_worker(tenant, celery_worker):
    route, _device = build_route(tenant)
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        stop_complete(stop=route.stops.get(sequence=1), actor=actor)

    def recomputed():
        with organization_scope(tenant.organization):
            return not route.stops.filter(sequence__gt=1, eta__isnull=True).exists()

    assert wait_for(recomputed, timeout=20)


@pytest.mark.django_db
def test_the_sweep_picks_routes_whose_vehicle_reported(tenant):
    route, device = build_route(tenant)
    with organization_scope(tenant.organization):
        assert list(routes_needing_eta()) == [route]  # no ETA yet
        route_eta_update(route)
        assert list(routes_needing_eta()) == []
        now = timezone.now() + timedelta(seconds=1)
        pings_ingest(
            device=device,
            source="native",
            received_at=now,
            fixes=[Fix(fix_time=now - timedelta(seconds=1), lat=POINTS[0][1], lon=POINTS[0][0])],
        )
        # Just computed: a vehicle still reporting triggers its own recompute once the debounce
        # window reopens (tracking/eta/triggers.py); the sweep takes a ping nothing followed.
        assert list(routes_needing_eta()) == []
        windows_later = now + timedelta(seconds=2 * settings.ETA_DEBOUNCE_S + 1)
        assert list(routes_needing_eta(now=windows_later)) == [route]


@pytest.mark.django_db
def test_etas_stay_inside_their_organization(tenant, other_tenant):
    from tracking.tasks import eta_update_route

    route, _device = build_route(tenant)
    # The task runs in the other organization's scope with our route id: nothing happens.
    assert (
        eta_update_route.run(organization_id=other_tenant.organization.pk, route_id=route.pk) == 0
    )
    with organization_scope(other_tenant.organization):
        assert list(routes_needing_eta()) == []
    assert not EtaRevision.dangerously_unscoped.exists()


@pytest.mark.django_db
def test_the_evaluation_runs_end_to_end_on_a_small_simulated_set():
    from io import StringIO

    from django.core.management import call_command

    day = "2026-03-02"
    call_command(
        "load_demo", "--date", day, "--shipments", "12", "--history", "1", stdout=StringIO()
    )
    out = StringIO()
    call_command("evaluate_eta", "--org", "demo", "--days", day, "--step", "600", stdout=out)
    text = out.getvalue()
    # The day before is history: the live method learns from it, never from the held-out day.
    for method in ("static_plan", "straight_line", "free_flow", "network_prior", "live"):
        assert f"| {method} |" in text
    assert "| 0-15 |" in text and "%" in text
    with pytest.raises(Exception, match="No held-out day"):
        call_command(
            "evaluate_eta", "--org", "demo", "--days", "", "--last", "0", stdout=StringIO()
        )


@pytest.mark.django_db
def test_training_needs_history_is_idempotent_and_stays_in_its_organization(other_tenant):
    from io import StringIO

    from django.core.management import call_command

    from control_tower.models import Organization
    from tracking.eta.learning import LearnedEstimator, train

    day = datetime(2026, 3, 5).date()
    organization_before = Organization.objects.filter(slug="demo").first()
    assert organization_before is None
    call_command(
        "load_demo",
        "--date",
        day.isoformat(),
        "--shipments",
        "40",
        "--history",
        "3",
        stdout=StringIO(),
    )
    demo = Organization.objects.get(slug="demo")
    with organization_scope(demo):
        assert train(demo, until=day - timedelta(days=3), days=1) is None  # no history: priors
        model = train(demo, until=day, days=7)
        assert model is not None and model.version == 1 and model.legs >= 30
        assert train(demo, until=day, days=7).pk == model.pk  # same data, same model
        estimator = LearnedEstimator.of(model)
        now = datetime(2026, 3, 5, 14, tzinfo=UTC)
        stops = [{"point": Point(*p, srid=4326), "parcels": 1} for p in POINTS]
        windows = estimator.windows([300.0, 200.0, 250.0], stops, now, ZoneInfo(demo.time_zone))
        assert [w[0] for w in windows] == sorted(w[0] for w in windows)
        assert all(low <= eta <= high and low >= now for eta, low, high in windows)
    out = StringIO()
    call_command("train_eta", "--org", "demo", "--days", "3", stdout=out)
    assert "not enough history" in out.getvalue() or "ETA model v" in out.getvalue()
    with organization_scope(other_tenant.organization):
        assert train(other_tenant.organization, until=day, days=7) is None
        from tracking.models import EtaModel

        assert not EtaModel.objects.exists()


@pytest.mark.django_db
def test_stale_etas_are_refreshed_and_planned_routes_leave_at_their_start(tenant):
    route, _device = build_route(tenant)
    with organization_scope(tenant.organization):
        earlier = timezone.now() - timedelta(hours=1)
        route_eta_update(route, now=earlier)  # ETAs computed an hour ago are now in the past
        assert list(routes_needing_eta()) == [route]
        route_eta_update(route)
        assert all(s.eta >= timezone.now() - timedelta(seconds=5) for s in route.stops.all())
        route.status = "planned"
        route.planned_start = timezone.now() + timedelta(hours=2)
        route.save()
        etas = route_etas(route)
        assert etas[0].earliest >= route.planned_start


@pytest.mark.django_db
def test_material_moves_count_from_the_last_announced_window_and_scale_with_the_horizon(tenant):
    """Small moves add up until they are announced; a stop hours away needs a bigger move
    than the next one (ETA_MATERIAL_CHANGE_S, or ETA_MATERIAL_SHARE of the time to go)."""
    from tracking.models import Route

    route, _device = build_route(tenant)
    now = datetime.now(UTC)
    with organization_scope(tenant.organization):
        assert route_eta_update(route, now=now) == 3
        # 40 s later everything is 40 s later: stored, not announced.
        assert route_eta_update(route, now=now + timedelta(seconds=40)) == 0
        # Another 40 s: 80 s from what was announced (only 40 s from what was stored).
        assert route_eta_update(route, now=now + timedelta(seconds=80)) == 3
        assert EtaRevision.objects.count() == 6
        later = now + timedelta(minutes=2)
        # A route leaving in three hours: its start slipping by 5 min is not news yet...
        Route.objects.filter(pk=route.pk).update(
            status="planned", planned_start=now + timedelta(hours=3)
        )
        route.refresh_from_db()
        assert route_eta_update(route, now=later) == 3  # from ~5 min to ~3 h ahead: material
        Route.objects.filter(pk=route.pk).update(planned_start=now + timedelta(hours=3, minutes=5))
        route.refresh_from_db()
        assert route_eta_update(route, now=later + timedelta(seconds=1)) == 0
        # ...20 minutes is.
        Route.objects.filter(pk=route.pk).update(planned_start=now + timedelta(hours=3, minutes=20))
        route.refresh_from_db()
        assert route_eta_update(route, now=later + timedelta(seconds=2)) == 3
