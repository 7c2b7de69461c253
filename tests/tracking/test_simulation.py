"""The fleet simulator: deterministic ground truth for a seed, the world's knobs, and a replayed
day whose pings, scans and proofs of delivery arrive through the platform's real endpoints."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from tracking.models import ProofOfDelivery, Route, RouteStatus, Stop, StopStatus
from tracking.simulation.runner import Simulation, build_timelines
from tracking.simulation.world import World, WorldConfig

DAY = date(2026, 3, 2)  # a past day: everything the simulator sends is in the past
START = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)  # 09:30 in Santiago


def demo_day(shipments: int = 16) -> Organization:
    call_command(
        "load_demo",
        "--date",
        DAY.isoformat(),
        "--shipments",
        str(shipments),
        "--world",
        "simple",  # the draws these tests count on are the simple demo's
        stdout=StringIO(),
    )
    return Organization.objects.get(slug="demo")


def truth(organization, seed: int, tmp_path, **knobs) -> list[dict]:
    path = tmp_path / f"truth-{seed}-{len(knobs)}.jsonl"
    Simulation(
        organization,
        day=DAY,
        start=START,
        config=WorldConfig(seed=seed, **knobs),
        base_url="http://unused",
        truth_path=path,
    ).compute()
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_ground_truth(tmp_path):
    organization = demo_day()
    first, second = truth(organization, 7, tmp_path), truth(organization, 7, tmp_path)
    assert first == second
    stops = [row for row in first if row["type"] == "stop"]
    assert stops and all(row["arrival"] < row["departure"] for row in stops)
    assert truth(organization, 8, tmp_path) != first


@pytest.mark.django_db
def test_the_worlds_knobs_change_what_happens(tmp_path):
    organization = demo_day()
    nobody = truth(organization, 1, tmp_path, not_home_probability=1.0)
    everybody = truth(organization, 1, tmp_path, not_home_probability=0.0)
    assert {r["outcome"] for r in nobody if r["type"] == "stop"} == {"failed"}
    assert {r["outcome"] for r in everybody if r["type"] == "stop"} == {"delivered"}
    jammed = truth(organization, 1, tmp_path, incident_probability=1.0)
    legs = [leg for r in jammed if r["type"] == "route" for leg in r["legs"]]
    assert legs and all(leg["why"] == "incident" and leg["factor"] >= 1.5 * 0.5 for leg in legs)


def test_rush_hour_is_slower_than_mid_morning():
    world = World(WorldConfig())
    assert world.congestion(datetime(2026, 3, 2, 8, 30)) > world.congestion(
        datetime(2026, 3, 2, 11, 0)
    )
    dwell_one = world.dwell_s("s1", "Calle 1", 1)
    assert world.dwell_s("s1", "Calle 1", 5) == pytest.approx(dwell_one + 4 * 25)


@pytest.mark.django_db(transaction=True)
def test_a_replayed_day_arrives_through_the_real_endpoints(asgi_live_server, tmp_path):
    organization = demo_day(shipments=30)
    simulation = Simulation(
        organization,
        day=DAY,
        start=START,
        config=WorldConfig(seed=3),
        base_url=asgi_live_server.url,
        speedup=100_000,
        interval_s=30,
        truth_path=tmp_path / "truth.jsonl",
        log=lambda _m: None,
    )
    sent = simulation.run()
    assert sent["errors"] == 0, sent
    rows = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    stops = [row for row in rows if row["type"] == "stop"]
    delivered = {r["stop"] for r in stops if r["outcome"] == "delivered"}
    failed = {r["stop"] for r in stops if r["outcome"] == "failed"}
    assert delivered
    with organization_scope(organization):
        assert set(Stop.objects.filter(pk__in=delivered).values_list("status", flat=True)) == {
            StopStatus.COMPLETED
        }
        assert set(Stop.objects.filter(pk__in=failed).values_list("status", flat=True)) <= {
            StopStatus.FAILED
        }
        assert ProofOfDelivery.objects.filter(stop__in=delivered).count() >= len(delivered)
        simulated = {r["route"] for r in rows if r["type"] == "route"}
        assert set(
            Route.objects.filter(date=DAY, code__in=simulated).values_list("status", flat=True)
        ) == {RouteStatus.COMPLETED}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT source, count(*) FROM tracking_ping WHERE organization_id = %s GROUP BY source",
            [organization.pk],
        )
        by_source = dict(cursor.fetchall())
    assert sum(by_source.values()) == sent["pings"]  # every fix sent was stored, once
    assert {"native", "osmand", "owntracks"} <= set(by_source)


@pytest.mark.django_db
def test_a_day_without_routes_has_nothing_to_drive(tmp_path):
    organization = demo_day()
    with organization_scope(organization):
        assert build_timelines(organization, date(2030, 1, 1), START, World(WorldConfig()), 5) == []
    out = StringIO()
    call_command(
        "simulate_fleet",
        "--org",
        "demo",
        "--date",
        "2030-01-01",
        "--truth-only",
        "--truth",
        str(tmp_path / "t.jsonl"),
        stdout=out,
    )
    assert (tmp_path / "t.jsonl").read_text() == ""


@pytest.mark.django_db
def test_history_days_are_planned_and_played_out():
    call_command(
        "load_demo",
        "--date",
        DAY.isoformat(),
        "--shipments",
        "20",
        "--history",
        "2",
        stdout=StringIO(),
    )
    organization = Organization.objects.get(slug="demo")
    with organization_scope(organization):
        past = Route.objects.filter(date__lt=DAY)
        assert set(past.values_list("date", flat=True)) == {date(2026, 2, 28), date(2026, 3, 1)}
        assert set(past.values_list("status", flat=True)) == {RouteStatus.COMPLETED}
        stops = Stop.objects.filter(route__date__lt=DAY)
        assert set(stops.values_list("status", flat=True)) <= {
            StopStatus.COMPLETED,
            StopStatus.FAILED,
        }
        for stop in stops:
            assert stop.actual_arrival < stop.actual_departure
        assert Route.objects.filter(date=DAY).exclude(status=RouteStatus.COMPLETED).exists()
        before = Route.objects.filter(date=date(2026, 3, 1)).count()
    # Idempotent: the past days are not planned twice.
    call_command("load_demo", "--date", DAY.isoformat(), "--history", "2", stdout=StringIO())
    with organization_scope(organization):
        assert Route.objects.filter(date=date(2026, 3, 1)).count() == before


@pytest.mark.django_db
def test_simulate_fleet_history_plays_out_planned_past_days():
    from datetime import timedelta

    organization = demo_day(shipments=12)
    yesterday = DAY - timedelta(days=1)
    call_command(
        "load_demo", "--date", yesterday.isoformat(), "--shipments", "12", stdout=StringIO()
    )
    out = StringIO()
    call_command(
        "simulate_fleet", "--org", "demo", "--date", DAY.isoformat(), "--history", "1", stdout=out
    )
    assert f"{yesterday}:" in out.getvalue()
    with organization_scope(organization):
        assert set(Route.objects.filter(date=yesterday).values_list("status", flat=True)) == {
            RouteStatus.COMPLETED
        }


def _conditions(rows: list[dict], kind: str) -> list[dict]:
    return [r for r in rows if r["type"] == "condition" and r["kind"] == kind]


@pytest.mark.django_db
def test_injected_conditions_are_seeded_and_recorded_in_the_truth(tmp_path):
    """Every mishap the exception rules must notice is in the truth with its start and end,
    the same for the same seed."""
    organization = demo_day()
    knobs = {
        "wrong_turn_probability": 0.5,
        "outage_probability": 1.0,
        "low_battery_probability": 1.0,
        "long_dwell_probability": 0.5,
        "breakdown_probability": 0.3,
        "not_home_probability": 0.3,
    }
    first = truth(organization, 11, tmp_path, **knobs)
    assert first == truth(organization, 11, tmp_path, **knobs)
    for kind in ("off_route", "signal_lost", "battery_low", "long_dwell", "stalled"):
        rows = _conditions(first, kind)
        assert rows, kind
        for row in rows:
            assert row["route"] and row["started_at"] < row["ended_at"], row
    failed = {r["stop"] for r in first if r["type"] == "stop" and r["outcome"] == "failed"}
    assert failed == {r["stop"] for r in _conditions(first, "failed_attempt")}
    # A breakdown happens on the road: the vehicle stands still there, then drives on.
    stall = _conditions(first, "stalled")[0]
    positions = [
        r
        for r in first
        if r["type"] == "position"
        and r["route"] == stall["route"]
        and stall["started_at"] <= r["t"] < stall["ended_at"]
    ]
    assert len(positions) > 10
    assert len({(round(p["lon"], 6), round(p["lat"], 6)) for p in positions}) == 1


def test_a_wrong_turn_leaves_the_line_and_a_late_route_starts_late():
    from datetime import timedelta

    from django.contrib.gis.geos import LineString, Point

    from tracking.simulation.timeline import _drive, _wrong_turn

    world = World(WorldConfig(seed=5, late_start_probability=1.0))
    assert 1500 <= world.start_delay_s("d:R1") <= 3600
    assert World(WorldConfig(seed=5, late_start_probability=0.0)).start_delay_s("d:R1") == 0
    line = LineString([(-71.25, -29.90), (-71.24, -29.90)], srid=4326)
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    samples = _drive(list(line.coords), start, 600.0, 5, None)
    last = samples[-1].t
    moved, truth_row, extra = _wrong_turn(
        samples, start, Point(-71.25, -29.90), 600.0, (0.3, 400.0, 600.0), 5
    )
    assert extra == 400.0 + 180.0
    off = [s for s in moved if truth_row["started_at"] <= s.t <= truth_row["ended_at"]]
    assert off and all(abs(s.lat - -29.90) * 111_320 > 550 for s in off)
    assert moved[-1].t == last + timedelta(seconds=extra)  # the rest of the leg is later


@pytest.mark.django_db
def test_a_breakdown_the_driver_reports_is_in_the_truth(tmp_path):
    """Which breakdowns the driver reports from the app, and when (1-4 min after stopping, or
    when the signal is back), is part of the seeded truth; not reporting is possible too."""
    organization = demo_day()
    knobs = {"breakdown_probability": 0.5, "outage_probability": 0.5}
    rows = truth(organization, 4, tmp_path, breakdown_report_probability=1.0, **knobs)
    assert rows == truth(organization, 4, tmp_path, breakdown_report_probability=1.0, **knobs)
    stalls = {(r["route"], r["leg"]): r for r in _conditions(rows, "stalled")}
    reports = _conditions(rows, "breakdown")
    assert reports and len(reports) == len(stalls)
    for report in reports:
        stall = stalls[(report["route"], report["leg"])]
        assert report["started_at"] == stall["started_at"]
        assert report["ended_at"] == stall["ended_at"]
        started = datetime.fromisoformat(report["started_at"])
        reported = datetime.fromisoformat(report["reported_at"])
        assert (reported - started).total_seconds() >= 59  # whole seconds: 60 s at the least
    silent = truth(organization, 4, tmp_path, breakdown_report_probability=0.0, **knobs)
    assert _conditions(silent, "breakdown") == []
    assert len(_conditions(silent, "stalled")) == len(stalls)


@pytest.mark.django_db(transaction=True)
def test_a_reported_breakdown_reaches_the_incident_endpoint(asgi_live_server, tmp_path):
    """The simulated phone posts the report with its device token: one incident alert per
    reported breakdown, on the route, raised by the device. The routes run from the moment
    they leave the hub (the rules that watch running routes see a breakdown before stop 1)."""
    from exceptions.models import Alert
    from tracking.simulation.demo import plan_unplayed_day

    organization = plan_unplayed_day(DAY, 12)  # nothing started yet
    with organization_scope(organization):
        planned = set(
            Route.objects.filter(date=DAY, status=RouteStatus.PLANNED).values_list(
                "code", flat=True
            )
        )
    simulation = Simulation(
        organization,
        day=DAY,
        start=START,
        config=WorldConfig(seed=6, breakdown_probability=0.4, breakdown_report_probability=1.0),
        base_url=asgi_live_server.url,
        speedup=100_000,
        interval_s=30,
        truth_path=tmp_path / "truth.jsonl",
        log=lambda _m: None,
    )
    sent = simulation.run()
    assert sent["errors"] == 0, sent
    rows = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    # The carrier's system started each planned route as its vehicle left the hub, before any
    # stop (not with its first delivery).
    first_arrival = {}
    for row in rows:
        if row["type"] == "stop" and row["route"] in planned:
            at = datetime.fromisoformat(row["arrival"])
            first_arrival[row["route"]] = min(at, first_arrival.get(row["route"], at))
    with organization_scope(organization):
        started = dict(
            Route.objects.filter(code__in=first_arrival).values_list("code", "started_at")
        )
    assert first_arrival and all(started[c] < first_arrival[c] for c in first_arrival), started
    reported = {r["route_id"] for r in _conditions(rows, "breakdown")}
    assert reported and sent["incidents"] == len(_conditions(rows, "breakdown"))
    with organization_scope(organization):
        alerts = list(Alert.objects.filter(kind="incident"))
        assert {a.route_id for a in alerts} == reported
        assert {a.severity for a in alerts} == {"critical"}
        assert all(a.detail["reported_by"].startswith("device ") for a in alerts)
