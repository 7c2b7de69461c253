"""The learned tables (tracking/eta/factors.py): shrinkage toward the organization's averages
when data is thin, effects recovered when it is not, and what the features read."""

from __future__ import annotations

import math
import random

import pytest
from django.contrib.gis.geos import Point

from tracking.eta.factors import (
    DWELL_GROUPS,
    TRAVEL_GROUPS,
    LearnedTimes,
    fit_additive,
    fit_trimmed,
    heading_way,
    road_kind,
    visit_keys,
)

HERE = Point(-71.25, -29.905, srid=4326)


def visits(address: str, n: int, dwell_s: float, *, building_text: str = "", driver=1):
    keys = visit_keys(
        hour=11, address=f"{address}{building_text}", parcels=1, point=HERE, crew=(1, driver)
    )
    return [keys] * n, [math.log(dwell_s)] * n


def test_an_address_seen_once_barely_moves_and_one_seen_often_moves_most_of_the_way():
    rows, y = [], []
    for i in range(400):  # the organization: 2-minute visits at many addresses
        r, t = visits(f"Calle Prat {i}", 1, 120)
        rows += r
        y += t
    once, once_y = visits("Av. del Mar 1", 1, 600)
    often, often_y = visits("Av. del Mar 2", 30, 600)
    model = fit_additive(rows + once + often, y + once_y + often_y, DWELL_GROUPS)
    base = model.predict(rows[0])
    seen_once = model.predict(once[0])
    seen_often = model.predict(often[0])
    assert base == pytest.approx(120, rel=0.1)
    # One 10-minute visit: the address's own effect is shrunk by 1 / (1 + 3).
    assert seen_once < 120 * (600 / 120) ** 0.3
    # Thirty: 30 / 33 of the way (the cell and driver take a little of it too).
    assert seen_often == pytest.approx(600, rel=0.15)
    assert base < seen_once < seen_often


def test_effects_of_building_and_driver_are_recovered_from_noisy_history():
    rng = random.Random(7)
    truth_building = {"apartment": 1.8, "shop": 0.8, "unknown": 1.0}
    truth_driver = {1: 0.85, 2: 1.0, 3: 1.25}
    rows, y = [], []
    for _ in range(3000):
        building = rng.choice(list(truth_building))
        driver = rng.choice(list(truth_driver))
        text = {"apartment": ", Depto 402", "shop": ", Local 3", "unknown": ""}[building]
        keys = visit_keys(
            hour=rng.randint(9, 17),
            address=f"Calle Colón {rng.randint(1, 2000)}{text}",
            parcels=rng.choice([1, 2]),
            point=Point(-71.25 + rng.uniform(-0.02, 0.02), -29.9 + rng.uniform(-0.02, 0.02)),
            crew=(1, driver),
        )
        dwell = 150 * truth_building[building] * truth_driver[driver] * rng.lognormvariate(0, 0.3)
        rows.append(keys)
        y.append(math.log(dwell))
    model = fit_trimmed(rows, y, DWELL_GROUPS)
    building = model.effects["building"]
    assert math.exp(building["apartment"] - building["unknown"]) == pytest.approx(1.8, rel=0.1)
    assert math.exp(building["shop"] - building["unknown"]) == pytest.approx(0.8, rel=0.1)
    driver = model.effects["driver"]
    assert math.exp(driver["1:3"] - driver["1:1"]) == pytest.approx(1.25 / 0.85, rel=0.1)


def test_a_thin_group_stays_near_the_average_and_a_thick_one_keeps_its_own():
    rows, y = [], []
    for hour, n, ratio in ((9, 500, 1.2), (10, 500, 1.2), (8, 400, 1.8), (20, 3, 1.8)):
        keys = {
            "hour_road": f"{hour}:l",
            "hour_road_way": f"{hour}:l:in",
            "carrier": "",
            "driver": ":",
            "weekday": "0",
        }
        rows += [keys] * n
        y += [math.log(ratio)] * n
    model = fit_additive(rows, y, TRAVEL_GROUPS)
    at = {
        hour: model.predict({**rows[0], "hour_road": f"{hour}:l", "hour_road_way": f"{hour}:l:in"})
        for hour in (8, 9, 20)
    }
    assert at[8] == pytest.approx(1.8, rel=0.03)
    assert at[9] == pytest.approx(1.2, rel=0.03)
    # Three legs at 8 p.m.: most of the way back to the organization's average (~1.4).
    assert at[20] < 1.55


def test_the_tables_round_trip_and_an_unknown_format_is_refused():
    rows, y = visits("Calle Prat 1", 40, 200)
    times = LearnedTimes(
        3, fit_additive(rows, y, DWELL_GROUPS), fit_additive(rows, y, DWELL_GROUPS)
    )
    again = LearnedTimes.of(3, times.as_json())
    assert again.dwell.predict(rows[0]) == pytest.approx(times.dwell.predict(rows[0]))
    assert LearnedTimes.of(3, {**times.as_json(), "format": 0}) is None
    assert LearnedTimes.of(3, None) is None


def test_what_the_features_read():
    assert visit_keys(
        hour=9, address="Av. del Mar 1200, Depto 402", parcels=7, point=HERE, crew=(None, None)
    ) == {
        "building": "apartment",  # tracking/addresses.py reads the unit marker
        "parcels": "4",  # four and more are one group
        "hour": "9",
        "cell": "-5981:-14250",
        "carrier": "",
        "driver": ":",
        "address": "av. del mar 1200 depto 402",
    }
    # 1 km in 100 s at free flow (36 km/h in a straight line): an arterial; 1 km in 300 s: not.
    assert road_kind(100, 1000) == "a" and road_kind(300, 1000) == "l"
    assert road_kind(10, 200) == "l"  # too short to reach one
    hub = Point(-71.25, -29.90, srid=4326)
    near, far = Point(-71.25, -29.91, srid=4326), Point(-71.25, -29.95, srid=4326)
    assert heading_way(far, near, hub) == "in" and heading_way(near, far, hub) == "out"
