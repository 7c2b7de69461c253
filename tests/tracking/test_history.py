"""History for the SLA reports: a replayed past day holds the evidence every scorecard metric
reads (scans, proofs of delivery, pings, ETA windows, ratings), through the services and inside
`backfill()` (nothing alerts anyone), once; and the carriers' profiles really differ."""

from __future__ import annotations

from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from control_tower.events.models import OutboxEvent
from control_tower.events.relay import relay_pending
from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from exceptions.models import Alert, AlertState
from notifications.models import Notification
from tracking.ingest.partitions import existing_partitions
from tracking.models import (
    DeliveryRating,
    DevicePosition,
    EtaRevision,
    FailureReason,
    Hub,
    PodFileKind,
    ProofOfDelivery,
    Route,
    RouteStatus,
    Scan,
    ScanType,
    ServiceType,
    Shipment,
    ShipmentStatus,
    Stop,
    StopStatus,
)
from tracking.simulation.demo import plan_unplayed_day
from tracking.simulation.history import replay_day
from tracking.simulation.world import DEFAULT_PROFILE, PROFILES, World, WorldConfig, scaled
from webhooks.models import WebhookDelivery

DAY = date(2026, 3, 2)
PAST = DAY - timedelta(days=1)


@pytest.fixture
def history_day(db) -> Organization:
    call_command(
        "load_demo",
        "--date",
        DAY.isoformat(),
        "--shipments",
        "40",
        "--history",
        "1",
        "--world",
        "simple",  # the past day is a Sunday: the rich world's would be nearly empty
        stdout=StringIO(),
    )
    return Organization.objects.get(slug="demo")


def _pings(organization, day: date) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracking_ping WHERE organization_id = %s "
            "AND fix_time >= %s AND fix_time < %s",
            [organization.pk, day, day + timedelta(days=2)],
        )
        return cursor.fetchone()[0]


def _evidence(organization) -> tuple:
    return (
        Scan.objects.count(),
        ProofOfDelivery.objects.count(),
        _pings(organization, PAST),
        EtaRevision.objects.count(),
        DeliveryRating.objects.count(),
        Alert.objects.count(),
    )


@pytest.mark.django_db
def test_a_history_day_records_the_evidence_every_metric_reads(history_day):
    organization = history_day
    with organization_scope(organization):
        routes = Route.objects.filter(date=PAST)
        assert routes and {r.status for r in routes} == {RouteStatus.COMPLETED}
        stops = Stop.objects.filter(route__date=PAST)
        delivered = Shipment.objects.filter(
            stop_shipments__stop__route__date=PAST, status=ShipmentStatus.DELIVERED
        )
        assert delivered.exists()

        # Scans: out for delivery at the route's start, delivered at the door, failed attempts
        # with a reason of the taxonomy; each by the route's phone (carrier-bound).
        scans = Scan.objects.filter(shipment__stop_shipments__stop__route__date=PAST)
        ofd = scans.filter(scan_type=ScanType.OUT_FOR_DELIVERY)
        assert ofd.count() >= 0.8 * delivered.count()
        assert scans.filter(scan_type=ScanType.DELIVERED).count() == delivered.count()
        for scan in scans.select_related("device", "shipment"):
            assert scan.device is not None and scan.device.carrier_id == scan.shipment.carrier_id
        for scan in ofd:
            route = Route.objects.get(stops__shipments=scan.shipment_id)
            assert scan.occurred_at == route.started_at
        failed = stops.filter(status=StopStatus.FAILED)
        for stop in failed:
            assert stop.failure_reason in FailureReason.values
            reasons = set(
                scans.filter(
                    scan_type=ScanType.ATTEMPT_FAILED, shipment__stop_shipments__stop=stop
                ).values_list("reason_code", flat=True)
            )
            assert reasons == {stop.failure_reason}

        # Proofs of delivery: one per delivered shipment, at the stop, with photo and signature
        # (unless the profile dropped one), the distance from the door measured.
        pods = ProofOfDelivery.objects.filter(stop__route__date=PAST)
        assert pods.count() == delivered.count()
        assert all(pod.distance_m is not None and pod.device_id for pod in pods)
        kinds = [set(p.files.values_list("kind", flat=True)) for p in pods]
        full = sum(kind == {PodFileKind.PHOTO, PodFileKind.SIGNATURE} for kind in kinds)
        assert full >= 0.8 * len(kinds)
        for pod in pods.select_related("stop"):
            assert pod.captured_at == pod.stop.actual_departure

        # Pings: about one a minute along each route, in the day's own partition, and the
        # devices' last positions untouched by the past.
        assert _pings(organization, PAST) > 20 * routes.count()
        assert PAST in existing_partitions()
        assert not DevicePosition.objects.exists()

        # ETA windows shown to customers: at the start and every half hour, for stops ahead.
        etas = EtaRevision.objects.filter(stop__route__date=PAST, method="history")
        assert etas.count() >= stops.count()
        for eta in etas.select_related("stop")[:200]:
            assert eta.earliest < eta.eta < eta.latest
            assert eta.computed_at < eta.stop.actual_arrival

        # Ratings: a share of the deliveries, who delivered copied from the route.
        rated = DeliveryRating.objects.filter(shipment__in=delivered)
        assert 0 < rated.count() < delivered.count()
        for rating in rated.select_related("shipment"):
            stop = Stop.objects.select_related("route").get(shipments=rating.shipment)
            assert rating.carrier_id == stop.route.carrier_id
            assert rating.driver_id == stop.route.driver_id
            assert rating.delivered_at == stop.actual_departure
            assert 1 <= rating.stars <= 5

        # Demo data the reports filter by.
        assert set(Hub.objects.values_list("region", flat=True)) == {"La Serena", "Coquimbo"}
        past = Shipment.objects.filter(reference__startswith=f"CQX-{PAST:%Y%m%d}-")
        assert len(set(past.values_list("service_type", flat=True))) >= 3
        assert not Shipment.objects.filter(promised_window_start__isnull=True).exists()
        assert not Shipment.objects.filter(promised_window_end__isnull=True).exists()
        scheduled = past.filter(service_type=ServiceType.SCHEDULED)
        for shipment in scheduled:
            width = shipment.promised_window_end - shipment.promised_window_start
            assert width == timedelta(hours=2)


@pytest.mark.django_db
def test_history_alerts_and_notifies_nobody_and_is_replayed_once(history_day):
    organization = history_day
    with organization_scope(organization):
        # Alerts of the past are recorded resolved, dated when they happened; nobody was told.
        assert not Alert.objects.exclude(state=AlertState.RESOLVED).exists()
        for alert in Alert.objects.all():
            assert alert.raised_at < alert.resolved_at <= alert.route.completed_at
            assert alert.raised_at.date() >= PAST and alert.raised_at.date() < DAY
        alerted = OutboxEvent.objects.filter(type__startswith="alert.")
        assert not alerted.filter(backfill=False).exists()
        past_shipments = Shipment.objects.filter(reference__startswith=f"CQX-{PAST:%Y%m%d}-")
        assert not OutboxEvent.objects.filter(
            backfill=False,
            aggregate_type="shipment",
            aggregate_id__in=[str(s.pk) for s in past_shipments],
        ).exists()
    # The relay hands every event to the subscribers (what the Celery task does): today's
    # shipments get their messages, last week's customers none.
    relay_pending(budget_s=60)
    with organization_scope(organization):
        assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()
        assert not Notification.objects.filter(shipment__in=past_shipments).exists()
        today = Shipment.objects.filter(reference__startswith=f"CQX-{DAY:%Y%m%d}-")
        assert Notification.objects.filter(shipment__in=today).exists()
        assert not WebhookDelivery.objects.exists()
        # The past day's events are kept for reports, marked as backfill.
        scanned = OutboxEvent.objects.filter(type="scan.recorded")
        assert scanned.exists() and not scanned.filter(backfill=False).exists()
        before = _evidence(organization)
    counts = replay_day(organization, PAST, World(WorldConfig(seed=42)))
    assert set(counts.values()) == {0}
    with organization_scope(organization):
        assert _evidence(organization) == before


def test_carrier_profiles_differ_deterministically():
    world = World(WorldConfig(seed=7))
    keys = [f"2026-03-01:R-{i}:1" for i in range(4000)]

    def failure_rate(code: str) -> float:
        profile = world.profile(code)
        return sum(not world.at_home(key, profile) for key in keys) / len(keys)

    gig, in_house = failure_rate("rapidos"), failure_rate("cqx")
    assert gig > 2 * in_house > 0
    assert failure_rate("rapidos") == gig  # the same seed, the same world
    assert World(WorldConfig(seed=8)).profile("rapidos") is PROFILES["rapidos"]
    assert world.profile("unknown-carrier") is DEFAULT_PROFILE
    assert World(WorldConfig(carrier_profiles=False)).profile("rapidos") is DEFAULT_PROFILE
    reasons = {world.failure_reason(key, PROFILES["elqui"]) for key in keys[:400]}
    assert {"not_home", "address_not_found", "out_of_time"} <= reasons
    assert reasons <= set(FailureReason.values)
    # The knobs still rule: 0 and 1 stay 0 and 1 whatever the profile.
    assert scaled(0.0, 3.0) == 0.0 and scaled(1.0, 0.5) == 1.0
    assert scaled(0.08, 2.0) == pytest.approx(0.1536)


@pytest.mark.django_db
def test_profiles_shape_a_replayed_day(history_day):
    """The slow regional courier's routes take longer per stop than the in-house fleet's, and
    its phones leave gaps: fewer fixes per hour on the road."""
    organization = history_day
    with organization_scope(organization):
        per = {}
        for code in ("cqx", "elqui"):
            routes = list(Route.objects.filter(date=PAST, carrier__code=code))
            assert routes
            hours = sum((r.completed_at - r.started_at).total_seconds() for r in routes) / 3600
            stops = Stop.objects.filter(route__in=routes).count()
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM tracking_ping p JOIN carriers_device d "
                    "ON d.id = p.device_id WHERE d.carrier_id = %s AND p.fix_time >= %s "
                    "AND p.fix_time < %s",
                    [routes[0].carrier_id, PAST, DAY + timedelta(days=1)],
                )
                fixes = cursor.fetchone()[0]
            per[code] = (hours / stops, fixes / hours)
        assert per["elqui"][0] > per["cqx"][0]
        assert per["elqui"][1] < per["cqx"][1]


@pytest.mark.django_db
def test_the_alerts_a_past_route_would_have_had_are_recorded_resolved(db):
    """With late starts and long silences forced, a replayed day has its route_not_started
    and signal_lost alerts, resolved, at the times the world says, counted as recorded."""
    organization = plan_unplayed_day(PAST, 20)
    world = World(WorldConfig(seed=3, late_start_probability=1.0, outage_probability=1.0))
    counts = replay_day(organization, PAST, world)
    assert counts["alerts"] > 0
    with organization_scope(organization):
        alerts = Alert.objects.all()
        assert alerts.count() == counts["alerts"]
        kinds = set(alerts.values_list("kind", flat=True))
        assert {"route_not_started", "signal_lost"} <= kinds
        for alert in alerts.filter(kind="route_not_started").select_related("route"):
            assert alert.state == AlertState.RESOLVED
            assert alert.started_at == alert.route.planned_start
            assert alert.resolved_at == alert.route.started_at
            assert alert.raised_at == alert.started_at + timedelta(minutes=20)
        assert not Notification.objects.exists()


@pytest.mark.django_db
def test_legs_are_memoized_only_inside_a_replay():
    from django.contrib.gis.geos import Point

    from tracking.simulation.timeline import cached_legs, leg_path

    a, b = Point(-71.25, -29.90, srid=4326), Point(-71.26, -29.91, srid=4326)
    assert leg_path(a, b) is not leg_path(a, b)
    with cached_legs():
        first = leg_path(a, b)
        assert leg_path(a, b) is first
        assert first.length_m > 0
    assert leg_path(a, b) is not first


def test_some_drivers_visit_the_stops_in_their_own_order():
    world = World(WorldConfig(seed=5))
    planned = list(range(1, 31))
    gig = world.visit_order("2026-03-01:CQB-04", planned, PROFILES["rapidos"])
    assert sorted(gig) == planned and gig != planned
    assert world.visit_order("2026-03-01:CQB-04", planned, PROFILES["rapidos"]) == gig
    assert world.visit_order("2026-03-01:LSR-01", planned, PROFILES["cqx"]) == planned
    # Only neighbours are swapped: no stop moves more than one place.
    assert all(abs(stop - place) <= 1 for place, stop in enumerate(gig, start=1))
