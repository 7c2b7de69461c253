"""The rich world (tracking/simulation/world_rich.py, city.py): each effect is there, drawn
from the right seed (the city's from `city_seed`, the day's from `seed`), and the expectations
the oracle reads equal the truth on a day without noise."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point

from tracking.addresses import building_type
from tracking.roads.classes import road_class
from tracking.simulation import city
from tracking.simulation.timeline import StopPlan, cached_legs, leg_path, route_timeline
from tracking.simulation.world import Leg, Visit, World, WorldConfig
from tracking.simulation.world_rich import CLOSURE_REACH_M, RAIN_TRAVEL

ZONE = ZoneInfo("America/Santiago")
LA_SERENA = (-71.2489, -29.9045)
OUTSKIRTS = (-71.2300, -29.8800)  # ~3 km north-east of the Plaza de Armas
WEDNESDAY = date(2026, 11, 25)


def rich(**knobs) -> World:
    return World(WorldConfig(kind="rich", **knobs))


def leg(hour: float, *, origin=OUTSKIRTS, destination=LA_SERENA, speed_kmh=45.0, driver=""):
    start = datetime.combine(WEDNESDAY, datetime.min.time(), tzinfo=ZONE)
    length = 3000.0
    return Leg(
        local_start=start + timedelta(hours=hour),
        free_flow_s=length / (speed_kmh / 3.6),
        length_m=length,
        origin=origin,
        destination=destination,
        driver=driver,
    )


def test_road_class_splits_at_35_kmh():
    assert road_class(1000, 1000 / (40 / 3.6)) == "arterial"
    assert road_class(1000, 1000 / (35 / 3.6)) == "arterial"
    assert road_class(1000, 1000 / (20 / 3.6)) == "local"
    assert road_class(0, 0) == "local"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Av. del Mar 2345, Depto 402, La Serena", "apartment"),
        ("Calle Prat 120, Dpto.51", "apartment"),
        ("Torre B, Av. Estadio 2", "apartment"),
        ("Calle Brasil 330, Local 3, Coquimbo", "shop"),
        ("Calle Colón 88, Of. 12", "shop"),
        ("Calle Colón 88, Casa 5", "house"),
        ("Calle Prat 120, La Serena", "unknown"),
        ("Casablanca 12", "unknown"),
        ("", "unknown"),
    ],
)
def test_building_type_reads_the_unit_marker(address, expected):
    assert building_type(address) == expected


def test_the_address_pool_is_the_citys_and_customers_reorder():
    pool = city.address_pool(42)
    assert len(pool) == city.POOL_SIZE
    assert len({a.text for a in pool}) == len(pool)  # one customer per text
    assert city.address_pool(42) == pool and city.address_pool(7) != pool
    kinds = Counter(a.building for a in pool)
    assert kinds["apartment"] > kinds["shop"] > 0 and kinds["house"] > kinds["apartment"]
    # ~80 % of apartments and shops say so; the rest, and every house, say nothing.
    marked = [a for a in pool if a.building != "house"]
    said = sum(building_type(a.text) == a.building for a in marked) / len(marked)
    assert 0.7 < said < 0.9
    assert all(building_type(a.text) == "unknown" for a in pool if a.building == "house")
    # A month of shipments: a few addresses again and again, most once or twice.
    visits = Counter(city.pick_address(f"R-{i}").text for i in range(4000))
    assert max(visits.values()) >= 15
    assert sum(v <= 2 for v in visits.values()) / len(visits) > 0.5
    assert city.pick_address("R-1") == city.pick_address("R-1")


def test_volume_by_weekday_and_payday():
    monday, saturday, sunday = date(2026, 11, 2), date(2026, 11, 7), date(2026, 11, 8)
    weeks = [timedelta(weeks=w) for w in range(3)]  # 2, 9, 16 Nov: none is a payday
    mondays = [city.day_volume(monday + w, 150) for w in weeks if monday.day + w.days != 16]
    assert min(mondays) > 150 > city.day_volume(saturday, 150) > city.day_volume(sunday, 150)
    assert city.day_volume(sunday, 150) >= 1
    assert city.paydays(2026, 11) == {date(2026, 11, 15), date(2026, 11, 30)}
    assert city.paydays(2026, 10) == {date(2026, 10, 15), date(2026, 10, 30)}  # 31st: Saturday
    # A Wednesday payday (the 15th of July 2026) against the next Wednesday.
    assert city.day_volume(date(2026, 7, 15), 150) > 1.15 * city.day_volume(date(2026, 7, 22), 150)
    assert city.day_volume(date(2026, 7, 15), 150) == city.day_volume(date(2026, 7, 15), 150)


def test_drivers_and_buildings_belong_to_the_city_not_the_day():
    one, other = rich(seed=1), rich(seed=1001)
    for driver in ("DRV-001", "DRV-002", "DRV-003"):
        assert one.rich.driver_travel(driver) == other.rich.driver_travel(driver)
        assert one.rich.driver_dwell(driver) == other.rich.driver_dwell(driver)
        assert one.rich.home_area(driver) == other.rich.home_area(driver)
    paces = [one.rich.driver_travel(f"DRV-{i:03d}") for i in range(1, 41)]
    assert 0.05 < statistics.pstdev(paces) < 0.2 and len(set(paces)) == 40
    assert rich(city_seed=7).rich.driver_travel("DRV-001") != paces[0]
    # The building of a pool address is the pool's truth, whatever its text says.
    unmarked = next(
        a for a in city.address_pool(42) if a.building == "apartment" and ", " not in a.line1
    )
    assert one.rich.building(unmarked.text) == "apartment"
    # The simple world's building draw is the city's too.
    simple, noisy = World(WorldConfig(seed=1)), World(WorldConfig(seed=1001))
    assert [simple._simple_base_s(f"Calle {i}") for i in range(50)] == [
        noisy._simple_base_s(f"Calle {i}") for i in range(50)
    ]


def test_dwell_by_building_parking_parcels_lunch_and_home_area():
    world = rich(rain=False)
    pool = city.address_pool(42)
    noon = datetime(2026, 11, 25, 11, 0, tzinfo=ZONE)

    def dwell(address, *, at=noon, parcels=1, location=OUTSKIRTS, driver=""):
        return world.rich.dwell(Visit(address.text, parcels, location, at, driver))

    house = next(a for a in pool if a.building == "house")
    flat = next(a for a in pool if a.building == "apartment")
    shop = next(a for a in pool if a.building == "shop")
    assert dwell(flat)[0] - dwell(house)[0] == 150 and dwell(house)[0] - dwell(shop)[0] == 30
    assert dwell(house, location=LA_SERENA)[0] - dwell(house)[0] == 60  # parking in the centre
    assert dwell(house, parcels=3)[0] - dwell(house)[0] == 50
    lunch = noon.replace(hour=13, minute=30)
    assert dwell(house, at=lunch)[1] == pytest.approx(1.15 * dwell(house)[1])
    # A driver at home in an area is quicker at the door there than elsewhere.
    driver = "DRV-003"
    home = city.AREAS[world.rich.home_area(driver)]
    there = (home[1], home[0])
    away = next((a[1], a[0]) for i, a in enumerate(city.AREAS) if i != world.rich.home_area(driver))
    ratio_home = dwell(house, location=there, driver=driver)[1] / dwell(house, location=there)[1]
    ratio_away = dwell(house, location=away, driver=driver)[1] / dwell(house, location=away)[1]
    assert ratio_home == pytest.approx(0.9 * ratio_away)
    # Shops: someone is always there.
    assert world.rich.not_home(shop.text) < world.rich.not_home(house.text)


def test_congestion_by_road_class_direction_and_school_run():
    world = rich(rain=False)
    inbound_am = world.rich.congestion(leg(8.0))
    outbound_am = world.rich.congestion(leg(8.0, origin=LA_SERENA, destination=OUTSKIRTS))
    local_am = world.rich.congestion(leg(8.0, speed_kmh=20))
    assert inbound_am == pytest.approx(1.6) and outbound_am == pytest.approx(1.3)
    assert local_am == pytest.approx((1 + 0.6 * 0.4) * 1.2)  # rush share and the school run
    inbound_pm = world.rich.congestion(leg(18.0))
    outbound_pm = world.rich.congestion(leg(18.0, origin=LA_SERENA, destination=OUTSKIRTS))
    assert outbound_pm > inbound_pm
    assert world.rich.congestion(leg(16.0, speed_kmh=20)) == pytest.approx(1.2)  # school only
    assert world.rich.congestion(leg(11.0)) == 1.0


def test_rain_is_a_day_level_draw_from_the_season():
    world = rich()
    winter = [date(2025, 6, 1) + timedelta(days=i) for i in range(92)]
    summer = [date(2025, 12, 1) + timedelta(days=i) for i in range(90)]
    wet_winter = sum(world.rich.raining(d) for d in winter) / len(winter)
    wet_summer = sum(world.rich.raining(d) for d in summer) / len(summer)
    assert 0.1 < wet_winter < 0.32 and wet_summer < 0.08
    assert [rich().rich.raining(d) for d in winter] == [world.rich.raining(d) for d in winter]
    assert [rich(seed=1001).rich.raining(d) for d in winter] != [
        world.rich.raining(d) for d in winter
    ]
    rainy = next(d for d in winter if world.rich.raining(d))
    dry = rich(rain=False)
    on = Leg(
        datetime.combine(rainy, datetime.min.time(), tzinfo=ZONE) + timedelta(hours=11),
        300,
        3000,
        OUTSKIRTS,
        LA_SERENA,
    )
    assert world.rich.travel(on) == pytest.approx(RAIN_TRAVEL * dry.rich.travel(on))


def test_closures_close_roads_for_an_hour_near_where_they_are():
    world = rich()
    days = [WEDNESDAY + timedelta(days=i) for i in range(200)]
    drawn = [world.rich.closures(d, ZONE) for d in days]
    assert 1.2 < sum(len(c) for c in drawn) / len(days) < 1.8  # Poisson, mean 1.5
    assert drawn == [rich().rich.closures(d, ZONE) for d in days]
    assert rich(closures_per_day=0).rich.closures(days[0], ZONE) == []
    day, closure = next((d, c[0]) for d, c in zip(days, drawn, strict=True) if c)
    assert 8 <= closure.start.hour < 18 and closure.end - closure.start == timedelta(hours=1)
    west, east = (closure.lon - 0.01, closure.lat), (closure.lon + 0.01, closure.lat)
    through = Leg(closure.start + timedelta(minutes=5), 300, 2000, west, east)
    assert 600 <= world.rich.closure_s(through) <= 1200 * len(world.rich.closures(day, ZONE))
    # Out of reach (north of the segment by more than CLOSURE_REACH_M, outside the demo area
    # where no closure is ever drawn) or after every closure of the day: no detour.
    north = 2 * CLOSURE_REACH_M / 111_320 + 0.2
    far = Leg(
        through.local_start, 300, 2000, (west[0], west[1] + north), (east[0], east[1] + north)
    )
    night = datetime.combine(day, datetime.min.time(), tzinfo=ZONE) + timedelta(hours=21)
    assert world.rich.closure_s(far) == 0
    assert world.rich.closure_s(Leg(night, 300, 2000, west, east)) == 0
    assert (
        world.rich.expected_closure_s(through)
        > 0
        == world.rich.expected_closure_s(Leg(night, 300, 2000, west, east))
    )


def test_the_simple_world_is_unchanged():
    world = World(WorldConfig())
    local = datetime(2026, 11, 24, 8, 20, tzinfo=ZONE)
    # Values of the world before the rich world existed (seed 42).
    assert world.leg_factor("2026-11-24:LSR-01", 1, local) == (1.5190626004274297, "traffic")
    assert world.dwell_s("s1", "Calle Prat 100, La Serena", 1) == 137.07449282243306


NOISE_FREE = {
    "leg_noise_sigma": 0.0,
    "dwell_noise_sigma": 0.0,
    "incident_probability": 0.0,
    "breakdown_probability": 0.0,
    "wrong_turn_probability": 0.0,
    "not_home_probability": 0.0,
    "long_dwell_probability": 0.0,
    "late_start_probability": 0.0,
    "closures_per_day": 0.0,
    "rain": True,
}


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["simple", "rich"])
@pytest.mark.parametrize("carrier", ["", "elqui"])
def test_expectations_equal_the_truth_on_a_noise_free_day(kind, carrier):
    world = World(WorldConfig(kind=kind, seed=5, **NOISE_FREE))
    pool = city.address_pool(42)
    stops = [
        StopPlan(
            stop_id=index,
            sequence=index,
            location=Point(address.lon, address.lat, srid=4326),
            address=address.text,
            parcels=1 + index % 3,
            shipment_ids=(index,),
            barcodes=(f"B{index}",),
        )
        for index, address in enumerate(pool[:8], start=1)
        if address.hub == "LSR"
    ]
    hub = Point(-71.2489, -29.9045, srid=4326)
    start = datetime(2026, 7, 15, 7, 40, tzinfo=ZONE)  # rush hour, school run, lunch later
    timeline = route_timeline(
        world,
        route_id=1,
        code="LSR-01",
        day=start.date().isoformat(),
        start=start,
        start_point=hub,
        hub=hub,
        stops=stops,
        zone=ZONE,
        carrier=carrier,
        driver="DRV-003",
    )
    assert len(timeline.stops) == len(stops) >= 3
    plans = {stop.stop_id: stop for stop in stops}
    here, leaving = hub, start
    for truth in timeline.stops:  # in the order driven (a carrier may swap neighbours)
        stop = plans[truth.stop_id]
        path = leg_path(here, stop.location)
        expected = world.expected_leg_s(
            Leg(
                local_start=leaving.astimezone(ZONE),
                free_flow_s=path.duration_s,
                length_m=path.length_m,
                origin=(here.x, here.y),
                destination=(stop.location.x, stop.location.y),
                driver="DRV-003",
                carrier=carrier,
            )
        )
        assert (truth.arrival - leaving).total_seconds() == pytest.approx(expected, abs=1e-3)
        dwell = world.expected_dwell_s(
            Visit(
                address=stop.address,
                parcels=stop.parcels,
                location=(stop.location.x, stop.location.y),
                local_arrival=truth.arrival.astimezone(ZONE),
                driver="DRV-003",
                carrier=carrier,
            )
        )
        assert (truth.departure - truth.arrival).total_seconds() == pytest.approx(dwell, abs=1e-3)
        here, leaving = stop.location, truth.departure


@pytest.mark.django_db
def test_expectations_are_the_mean_of_the_truth_over_the_days_noise():
    """Over many routes' noise (the same city, the same day), a leg's and a stop's true times
    average to what the oracle expects: per-leg noise, incidents, breakdowns, wrong turns,
    not-home and long dwells are all counted."""
    customer = next(a for a in city.address_pool(42) if a.hub == "LSR" and a.building == "house")
    stop = StopPlan(
        1, 1, Point(customer.lon, customer.lat, srid=4326), customer.text, 2, (1,), ("B1",)
    )
    hub = Point(-71.2489, -29.9045, srid=4326)
    start = datetime(2026, 7, 15, 8, 10, tzinfo=ZONE)
    path = leg_path(hub, stop.location)
    leg_about = Leg(
        start,
        path.duration_s,
        path.length_m,
        (hub.x, hub.y),
        (customer.lon, customer.lat),
        "DRV-002",
    )
    legs, dwells, expected = [], [], None
    with cached_legs():  # one road query, not one a route
        world = World(WorldConfig(kind="rich", rain=False))
        for number in range(1500):  # every draw is keyed by the route: 1,500 noise draws
            timeline = route_timeline(
                world,
                route_id=1,
                code=f"LSR-{number}",
                day="d",
                start=start,
                start_point=hub,
                hub=hub,
                stops=[stop],
                zone=ZONE,
                interval_s=3600,
                driver="DRV-002",
            )
            (truth,) = timeline.stops
            legs.append((truth.arrival - start).total_seconds())
            dwells.append((truth.departure - truth.arrival).total_seconds())
            if expected is None:
                visit = Visit(
                    customer.text, 2, (customer.lon, customer.lat), truth.arrival, "DRV-002"
                )
                expected = world.expected_leg_s(leg_about), world.expected_dwell_s(visit)
    assert statistics.fmean(legs) == pytest.approx(expected[0], rel=0.05)
    # The arrival (hence lunch, which the visit above ignores) moves little at 8:10.
    assert statistics.fmean(dwells) == pytest.approx(expected[1], rel=0.05)
