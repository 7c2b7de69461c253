"""The bulk ETA recompute (tracking/eta/bulk.py) against the one-route recompute it replaces on
the ping path: on the same routes, positions and clock, the stored windows, the revisions and
the emitted `stop.eta_changed` events are equal; a batch spanning organizations keeps each one's
learned state and rows apart; and the burst task takes every due route of an organization on a
real Celery worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from control_tower.events.models import OutboxEvent
from control_tower.redis_clients import sync_redis
from control_tower.tenancy.scope import organization_scope
from tests.conftest import wait_for
from tests.factories import (
    ETA_POINTS,
    EtaCalibrationFactory,
    EtaModelFactory,
    VehicleFactory,
    make_device,
    running_route_with_phone,
)
from tracking.eta.bulk import active_routes, routes_eta_update
from tracking.eta.learned import forget_learned
from tracking.eta.recompute import route_eta_update
from tracking.eta.triggers import (
    ETA_BURST,
    ETA_UPDATE_ROUTE,
    burst_pending_key,
    due_key,
    routes_mark_due,
)
from tracking.ingest.fixes import Fix
from tracking.ingest.pings import pings_ingest
from tracking.models import EtaRevision, Route, Stop
from tracking.roads import routing


def ping(device, now, lon, lat, ago_s=5):
    with organization_scope(device.organization):
        pings_ingest(
            device=device,
            source="native",
            received_at=now,
            fixes=[Fix(fix_time=now - timedelta(seconds=ago_s), lat=lat, lon=lon, accuracy_m=5)],
        )


def world(tenant, other_tenant, now):
    """Routes in every situation the position rule knows, in two organizations: the other one
    has a learned model and a calibration, ours has none (priors)."""
    org, other = tenant.organization, other_tenant.organization
    with_fix, phone, _token = running_route_with_phone(tenant, shipments=False)
    ping(phone, now, *ETA_POINTS[0])
    routes = [with_fix]
    # The vehicle stands at its first stop (arrived two minutes ago): that dwell is what remains.
    Stop.dangerously_unscoped.filter(route=with_fix, sequence=1).update(
        status="arrived", actual_arrival=now - timedelta(minutes=2)
    )
    # No fix at all, one stop done: it starts from there.
    from_stop, _phone, _token = running_route_with_phone(tenant, shipments=False)
    Stop.dangerously_unscoped.filter(route=from_stop, sequence=1).update(
        status="completed", actual_departure=now - timedelta(minutes=3)
    )
    routes.append(from_stop)
    # Nothing at all: from the hub.
    routes.append(running_route_with_phone(tenant, shipments=False)[0])
    # The driver's phone is silent but the vehicle's tracker reports.
    by_vehicle, _phone, _token = running_route_with_phone(tenant, shipments=False)
    vehicle = VehicleFactory(organization=org, carrier=tenant.carrier)
    Route.dangerously_unscoped.filter(pk=by_vehicle.pk).update(vehicle=vehicle)
    tracker, _ = make_device(organization=org, carrier=tenant.carrier, vehicle=vehicle)
    ping(tracker, now, *ETA_POINTS[1])
    routes.append(by_vehicle)
    # A planned route that leaves later.
    planned, _phone, _token = running_route_with_phone(tenant, shipments=False)
    Route.dangerously_unscoped.filter(pk=planned.pk).update(
        status="planned", planned_start=now + timedelta(minutes=40)
    )
    routes.append(planned)
    # The other organization's route, with its own learned state.
    theirs, their_phone, _token = running_route_with_phone(other_tenant, shipments=False)
    ping(their_phone, now, *ETA_POINTS[0])
    routes.append(theirs)
    EtaModelFactory(
        organization=other, travel_by_hour={str(h): 1.5 for h in range(24)}, dwell_factor=1.2
    )
    EtaCalibrationFactory(
        organization=other,
        buckets={b: {"p10_min": -6.0, "p90_min": 9.0, "n": 100} for b in ("0-15", "15-30")},
    )
    forget_learned(org.pk)
    forget_learned(other.pk)
    return [r.pk for r in routes], (with_fix, phone)


def loaded(route_ids):
    """The routes as the tasks load them (fresh rows, hub and organization joined)."""
    out = []
    for route in Route.dangerously_unscoped.filter(pk__in=route_ids).order_by("pk"):
        with organization_scope(route.organization):
            out += active_routes(route.organization_id, [route.pk])
    return out


def stored(route_ids) -> dict:
    stops = Stop.dangerously_unscoped.filter(route_id__in=route_ids)
    return {
        "stops": sorted(
            stops.values_list(
                "id", "organization_id", "eta", "eta_earliest", "eta_latest", "eta_updated_at"
            )
        ),
        "revisions": sorted(
            EtaRevision.dangerously_unscoped.filter(stop__route_id__in=route_ids).values_list(
                "organization_id", "stop_id", "computed_at", "eta", "earliest", "latest", "method"
            )
        ),
        "events": sorted(
            (e.organization_id, e.carrier_id, e.aggregate_id, sorted(e.payload.items()))
            for e in OutboxEvent.dangerously_unscoped.filter(type="stop.eta_changed")
        ),
    }


def one_by_one(route_ids, now) -> dict[int, int]:
    moved = {}
    for route in loaded(route_ids):
        with organization_scope(route.organization):
            moved[route.pk] = route_eta_update(route, now=now)
    return moved


def both_ways(route_ids, now):
    """(moved, stored) by the one-route path, then, from the same state, by the bulk path (each
    computing its legs afresh: the per-process leg cache is shared)."""
    savepoint = transaction.savepoint()
    routing._leg_cache.clear()
    single = one_by_one(route_ids, now), stored(route_ids)
    transaction.savepoint_rollback(savepoint)
    routing._leg_cache.clear()
    bulk = routes_eta_update(loaded(route_ids), now=now), stored(route_ids)
    return single, bulk


@pytest.fixture(params=["road network", "straight lines"])
def roads(request, db):
    """Legs on the Coquimbo road network (snapped, cached, bounded searches), or without any
    network (straight lines): both ways through the leg computation."""
    if request.param == "road network":
        call_command("load_road_network", "--demo", "coquimbo", "--if-missing", "--no-progress")
        routing.forget_networks()
    yield request.param
    # The legs this test's network shared (its own import time names them) go with it.
    from control_tower.redis_clients import sync_redis
    from tracking.eta.legs import shared_key
    from tracking.roads.graph import graph_for

    for network in routing._loaded_networks():
        sync_redis().delete(shared_key(graph_for(network)))


@pytest.mark.django_db
def test_bulk_stores_the_same_etas_revisions_and_events_as_one_route_at_a_time(
    tenant, other_tenant, roads
):
    now = datetime.now(UTC).replace(microsecond=0)
    route_ids, (with_fix, phone) = world(tenant, other_tenant, now)
    # First recompute: every open stop gets its first ETA (all material).
    single, bulk = both_ways(route_ids, now)
    assert single == bulk
    moved, state = bulk
    with_eta = [stop for stop in state["stops"] if stop[2] is not None]
    assert sum(moved.values()) == len(with_eta) == len(state["events"]) == 17  # 18 stops, 1 done
    # A few seconds later nothing moved materially: windows stored, no revision, no event.
    single, bulk = both_ways(route_ids, now + timedelta(seconds=5))
    assert single == bulk
    assert sum(bulk[0].values()) == 0
    # The van drove on and the clock moved: some windows move materially, some may not.
    later = now + timedelta(minutes=4)
    ping(phone, later, *ETA_POINTS[1])
    single, bulk = both_ways(route_ids, later)
    assert single == bulk
    assert bulk[0][with_fix.pk] > 0


@pytest.mark.django_db
def test_a_batch_spanning_organizations_keeps_each_ones_learned_state_and_rows(
    tenant, other_tenant
):
    now = datetime.now(UTC).replace(microsecond=0)
    route_ids, _ = world(tenant, other_tenant, now)
    routes_eta_update(loaded(route_ids), now=now)
    ours, theirs = tenant.organization.pk, other_tenant.organization.pk
    methods = dict(
        EtaRevision.dangerously_unscoped.values_list("organization_id", "method").distinct()
    )
    assert methods == {ours: "network_prior", theirs: "network_by_hour"}
    # Every row stays in the organization of its stop, every event in the one of its route.
    for revision in EtaRevision.dangerously_unscoped.select_related("stop"):
        assert revision.organization_id == revision.stop.organization_id
    for event in OutboxEvent.dangerously_unscoped.filter(type="stop.eta_changed"):
        route = Route.dangerously_unscoped.get(pk=event.aggregate_id)
        assert event.organization_id == route.organization_id
    # Their calibrated windows (-6 / +9 min) are not ours (the prior's +/- a few minutes).
    their_first = Stop.dangerously_unscoped.filter(organization_id=theirs).order_by("id").first()
    assert their_first.eta_latest - their_first.eta == timedelta(minutes=9)
    # A route id of another organization, asked for in ours, is not loaded.
    their_route = Route.dangerously_unscoped.filter(organization_id=theirs).first()
    with organization_scope(tenant.organization):
        assert active_routes(ours, [their_route.pk]) == []


@pytest.mark.django_db(transaction=True)
def test_the_burst_task_takes_every_due_route_in_one_go_on_a_real_worker(
    tenant, other_tenant, celery_worker, published_tasks
):
    now = timezone.now()
    ours = [running_route_with_phone(tenant, shipments=False)[0] for _ in range(5)]
    theirs = running_route_with_phone(other_tenant, shipments=False)[0]
    for organization in (tenant.organization, other_tenant.organization):  # an earlier session's
        sync_redis().delete(due_key(organization.pk), burst_pending_key(organization.pk))
    routes_mark_due(
        organization_id=tenant.organization.pk, route_ids=[r.pk for r in ours], received_at=now
    )
    routes_mark_due(
        organization_id=other_tenant.organization.pk, route_ids=[theirs.pk], received_at=now
    )

    def all_stored(routes):
        ids = [r.pk for r in routes]
        return not Stop.dangerously_unscoped.filter(route_id__in=ids, eta__isnull=True).exists()

    assert wait_for(lambda: all_stored([*ours, theirs]), timeout=30, what="ETAs stored")
    # One task per organization, none per route.
    assert published_tasks.count(ETA_BURST) == 2
    assert ETA_UPDATE_ROUTE not in published_tasks
    revisions = EtaRevision.dangerously_unscoped
    assert revisions.filter(organization=other_tenant.organization).count() == 3
    assert revisions.filter(organization=tenant.organization).count() == 15


@pytest.mark.django_db
def test_stop_to_stop_legs_are_shared_between_processes_and_equal_routings():
    from django.contrib.gis.geos import Point

    from control_tower.redis_clients import sync_redis
    from tracking.eta.legs import XY, legs_many, shared_key
    from tracking.roads.graph import graph_for

    call_command("load_road_network", "--demo", "coquimbo", "--if-missing", "--no-progress")
    routing.forget_networks()
    points = [XY(-71.2480, -29.9040), *(XY(lon, lat) for lon, lat in ETA_POINTS)]
    graph = graph_for(routing.network_covering([Point(p.x, p.y) for p in points]))
    redis, key = sync_redis(), shared_key(graph)
    redis.delete(key)
    try:
        routing._leg_cache.clear()
        [legs] = legs_many([points], from_vehicle=True)
        routing._leg_cache.clear()
        geos = [Point(p.x, p.y, srid=4326) for p in points]
        assert legs == routing.leg_durations(geos, from_vehicle=True)
        assert legs[0] == routing.vehicle_leg(geos[0], geos[1]).seconds
        # The stop-to-stop legs went to Redis; the vehicle's own leg did not.
        shared = redis.hgetall(key)
        assert len(shared) == len(ETA_POINTS) - 1
        # Another process (an empty local cache) takes them from there instead of searching.
        field = next(iter(shared))
        redis.hset(key, field, "1000.0")
        routing._leg_cache.clear()
        [again] = legs_many([points], from_vehicle=True)
        assert again != legs and again[0] == legs[0]
        assert any(abs(leg - 1000.0) < 300 for leg in again[1:])
    finally:
        redis.delete(key)
        routing._leg_cache.clear()
