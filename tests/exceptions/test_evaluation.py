"""The exceptions evaluation: a short simulated day played out with the live rules (real
ingest, outbox relay and sweep at simulated time) and scored against the simulator's truth."""

from __future__ import annotations

import json
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from exceptions.evaluation import KINDS, play_day, score
from exceptions.models import Alert, AlertState
from tracking.simulation.demo import plan_unplayed_day
from tracking.simulation.world import World, WorldConfig

DAY = date(2026, 3, 2)  # a past day: the fixes are never from the future


def planned_day(shipments: int = 6) -> Organization:
    return plan_unplayed_day(DAY, shipments)


@pytest.mark.django_db(transaction=True)
def test_a_short_day_finds_the_injected_breakdown_and_reports_every_kind():
    organization = planned_day()
    # Every leg breaks down and nothing else goes wrong: the stall rule must see them.
    world = World(
        WorldConfig(
            seed=3,
            breakdown_probability=1.0,
            breakdown_report_probability=0.5,
            incident_probability=0.0,
            offline_probability=0.0,
            bad_fix_probability=0.0,
            wrong_turn_probability=0.0,
            late_start_probability=0.0,
            outage_probability=0.0,
            low_battery_probability=0.0,
            long_dwell_probability=0.0,
            not_home_probability=0.0,
        )
    )
    run = play_day(organization, DAY, world, step_s=60, eta_every_s=0)
    stalls = [t for t in run.truths if t["kind"] == "stalled"]
    assert stalls
    results = score(organization, [run])
    for kind in KINDS:
        for metric in ("precision_pct", "recall_pct", "false_alarms_per_100_route_h", "flapping"):
            assert f"{kind}_{metric}" in results
    assert results["stalled_eligible"] > 0
    assert results["stalled_recall_pct"] >= 50
    assert results["stalled_delay_p50_s"] is not None
    assert results["stalled_flapping"] == 0
    # The drivers who report their breakdown from the app raise incident alerts, each matched.
    reports = [t for t in run.truths if t["kind"] == "breakdown"]
    assert results["incident_truths"] == len(reports) > 0
    assert results["incident_recall_pct"] == 100.0 and results["incident_precision_pct"] == 100.0
    assert results["incident_delay_after_threshold_p50_s"] <= 60  # a step after the report
    assert {a.resolved is not None for a in run.alerts.values() if a.kind == "incident"} == {True}
    # The played day leaves nothing open behind it for the console.
    with organization_scope(organization):
        assert not Alert.objects.exclude(state=AlertState.RESOLVED).exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_prints_the_table_and_writes_the_figures(tmp_path, monkeypatch):
    planned_day(shipments=4)
    out = StringIO()
    monkeypatch.setattr("bench.results_file.RESULTS_DIR", tmp_path)
    call_command(
        "evaluate_exceptions",
        "--org",
        "demo",
        "--days",
        "1",
        "--seed",
        "5",
        "--step",
        "60",
        "--eta-every",
        "0",
        "--json",
        "exceptions-test",
        stdout=out,
    )
    assert "| stalled |" in out.getvalue()
    figures = json.loads((tmp_path / "exceptions-test.json").read_text())
    assert figures["days"] == 1 and figures["route_hours"] > 0
    assert "signal_lost_recall_pct" in figures
