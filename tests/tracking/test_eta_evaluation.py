"""`evaluate_days`: the held-out replay that docs/ETA.md's figures come from."""

from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from tests.tracking.test_world_rich import NOISE_FREE as WORLD_NOISE_FREE
from tracking.eta.evaluation import BY_PREDICTED, METHODS, WITH_WINDOWS, evaluate_days
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
    # The live windows by predicted horizon: the same predictions, bucketed otherwise.
    assert sum(r["n"] for r in first[BY_PREDICTED].values()) == sum(
        r["n"] for r in first["live"].values()
    )
    # Without learned tables the live ETAs are the hourly ones: the same errors, other windows
    # (the conformal ones, replayed online).
    for bucket, row in first["live"].items():
        hourly = first["by_hour"][bucket]
        assert hourly["n"] == row["n"]
        if row["n"]:
            assert hourly["p90_abs_min"] == row["p90_abs_min"]
            assert abs(hourly["mae_min"] - row["mae_min"]) <= 0.01


# Every day-noise knob off (tests/tracking/test_world_rich.py), and no driver swaps two stops of
# the plan (the carriers' profiles): the truth is what the world's parameters say.
NOISE_FREE = {**WORLD_NOISE_FREE, "carrier_profiles": False}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["simple", "rich"])
def test_on_days_without_noise_the_oracle_is_the_bound(kind):
    call_command(
        "load_demo", "--date", DAY.isoformat(), "--shipments", "30", "--history", "1",
        "--world", kind, stdout=StringIO(),
    )  # fmt: skip
    demo = Organization.objects.get(slug="demo")
    with organization_scope(demo):
        days = sorted(set(Route.objects.filter(date__lt=DAY).values_list("date", flat=True)))
        world = World(WorldConfig(kind=kind, seed=5, **NOISE_FREE))
        results = evaluate_days(demo, days, world, step_s=600, travel_by_hour={"10": 1.2})
    for bucket, oracle in results["oracle"].items():
        if not oracle["n"]:
            continue
        # Exact but for where the vehicle is between two fixes (every 30 s) and the road
        # network's way from a point mid-street.
        assert oracle["mae_min"] <= 0.5, bucket
        for method in METHODS:
            row = results[method][bucket]
            if row.get("n"):
                assert oracle["mae_min"] <= row["mae_min"], (bucket, method)
