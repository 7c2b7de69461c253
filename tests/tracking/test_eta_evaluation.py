"""`evaluate_days`: the held-out replay that docs/ETA.md's figures come from."""

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from tracking.eta.evaluation import METHODS, WITH_WINDOWS, evaluate_days
from tracking.models import Route
from tracking.simulation.world import World, WorldConfig

DAY = date(2026, 3, 2)


@pytest.mark.django_db(transaction=True)
def test_every_method_is_measured_on_the_held_out_days_and_the_replay_is_repeatable():
    call_command(
        "load_demo", "--date", DAY.isoformat(), "--shipments", "40", "--history", "2",
        stdout=StringIO(),
    )  # fmt: skip
    demo = Organization.objects.get(slug="demo")
    with organization_scope(demo):
        days = sorted(set(Route.objects.filter(date__lt=DAY).values_list("date", flat=True)))
        assert len(days) == 2
        known = {
            "step_s": 600,
            "travel_by_hour": {"8": 1.3},
            "dwell_factor": 1.1,
            "calibration": {"0-15": (-300.0, 300.0)},
        }
        first = evaluate_days(demo, days, World(WorldConfig(seed=5)), **known)
        again = evaluate_days(demo, days, World(WorldConfig(seed=5)), **known)

    assert first == again
    # No learned estimator given: every other method predicted every stop still ahead.
    measured = [m for m in METHODS if m != "learned"]
    assert first["learned"]["0-15"] == {"n": 0}
    counts = {m: first[m]["0-15"]["n"] for m in measured}
    assert min(counts.values()) > 0
    assert len({counts[m] for m in measured if m != "static_plan"}) == 1
    for method in measured:
        row = first[method]["0-15"]
        assert 0 <= row["mae_min"] <= row["p90_abs_min"]
        assert ("p10_p90_coverage_pct" in row) == (method in WITH_WINDOWS)
    # The conformal windows sit on the live ETAs: the same errors, other windows.
    for bucket, row in first["live"].items():
        conformal_row = first["live_conformal"][bucket]
        assert conformal_row["n"] == row["n"]
        if row["n"]:
            assert conformal_row["p90_abs_min"] == row["p90_abs_min"]
            assert abs(conformal_row["mae_min"] - row["mae_min"]) <= 0.01
