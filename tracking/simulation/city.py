"""The demo city's fixed structure: delivery areas, city centres, the customers' addresses and
how many parcels a day brings.

What is here belongs to the CITY, not to a day: it comes from a `city_seed` (or from no seed at
all), so a held-out evaluation run with another noise seed still meets the same buildings and
the same customers. The rich world (tracking/simulation/world_rich.py) reads the true building
type of an address from the pool; the demo generator (demo_day.py) sends its shipments to it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from tracking.geo import distance_m

# Delivery areas: (centre lat, lon, radius km, weight, city, hub code)
AREAS = [
    (-29.9050, -71.2500, 2.2, 4, "La Serena", "LSR"),
    (-29.9220, -71.2600, 1.8, 3, "La Serena", "LSR"),
    (-29.8880, -71.2400, 1.5, 2, "La Serena", "LSR"),
    (-29.9530, -71.3380, 1.8, 3, "Coquimbo", "CQB"),
    (-29.9700, -71.3300, 1.5, 2, "Coquimbo", "CQB"),
    (-29.9400, -71.3100, 1.5, 2, "Coquimbo", "CQB"),
]

# City centres (lon, lat): La Serena's Plaza de Armas and Coquimbo's centre. Parking is hard
# within CENTRE_RADIUS_M of one; "inbound" means towards the nearest one.
CENTRES = [(-71.2489, -29.9045), (-71.3436, -29.9533)]
CENTRE_RADIUS_M = 1200.0

STREETS = [
    "Av. Francisco de Aguirre",
    "Calle Cordovez",
    "Av. del Mar",
    "Calle Prat",
    "Calle Brasil",
    "Av. Estadio",
    "Calle Almagro",
    "Av. Cuatro Esquinas",
    "Calle Colón",
    "Av. Costanera",
    "Calle Aldunate",
    "Av. Los Carrera",
    "Calle Melgarejo",
    "Calle Varela",
    "Av. Peñuelas",
]

POOL_SIZE = 1500
# Share of apartment blocks and shops among addresses, in the centre and elsewhere (the rest
# are houses): La Serena and Coquimbo are towns of houses with blocks around the centres.
APARTMENT_SHARE = {"centre": 0.55, "elsewhere": 0.30}
SHOP_SHARE = 0.10
MARKER_WRITTEN = 0.8  # an apartment or a shop says so in its address text this often
# Customers reorder: the address of the k-th most loyal customer is picked with weight
# (k + ZIPF_OFFSET) ** -ZIPF_EXPONENT, so a few dozen addresses get a parcel every few days
# and most get one or two a month.
ZIPF_EXPONENT = 1.1
ZIPF_OFFSET = 30


def seeded(seed, *about) -> random.Random:
    """A generator for one thing, independent of every other draw (the world's rule)."""
    key = "|".join(str(part) for part in (seed, *about))
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))  # noqa: S311


def nearest_centre(lon: float, lat: float) -> tuple[tuple[float, float], float]:
    """(centre, metres to it) of the city centre nearest a point."""
    best = min(CENTRES, key=lambda c: distance_m(lat, lon, c[1], c[0]))
    return best, distance_m(lat, lon, best[1], best[0])


def in_centre(lon: float, lat: float) -> bool:
    return nearest_centre(lon, lat)[1] <= CENTRE_RADIUS_M


def area_of(lon: float, lat: float) -> int:
    """Index in AREAS of the area a point belongs to: the nearest area centre, in units of
    the area's radius (areas overlap; a point belongs to the one it is deepest in)."""

    def depth(index: int) -> float:
        lat0, lon0, radius_km = AREAS[index][:3]
        return distance_m(lat, lon, lat0, lon0) / (radius_km * 1000)

    return min(range(len(AREAS)), key=depth)


@dataclass(frozen=True)
class CustomerAddress:
    line1: str  # street, number and (when written) the unit: what the shipment carries
    city: str
    hub: str
    lon: float
    lat: float
    building: str  # the truth: "apartment" | "shop" | "house"
    area: int  # index in AREAS
    weight: float  # how often this customer orders, relative to the others

    @property
    def text(self) -> str:
        """The stop's address as a route carries it (demo_day `_route_spec`)."""
        return f"{self.line1}, {self.city}"


@functools.lru_cache(maxsize=4)
def address_pool(city_seed: int = 42) -> tuple[CustomerAddress, ...]:
    """The city's POOL_SIZE customer addresses (deterministic from `city_seed`)."""
    rng = seeded(city_seed, "address-pool")
    weights = [area[3] for area in AREAS]
    ranks = list(range(1, POOL_SIZE + 1))
    rng.shuffle(ranks)
    pool, taken = [], set()
    for rank in ranks:
        area = rng.choices(range(len(AREAS)), weights=weights)[0]
        lat0, lon0, radius_km, _w, city, hub = AREAS[area]
        distance = radius_km * math.sqrt(rng.random())
        bearing = rng.uniform(0, 2 * math.pi)
        lat = lat0 + (distance / 111.32) * math.cos(bearing)
        lon = lon0 + (distance / (111.32 * math.cos(math.radians(lat0)))) * math.sin(bearing)
        apartments = APARTMENT_SHARE["centre" if in_centre(lon, lat) else "elsewhere"]
        pick = rng.random()
        building = (
            "apartment"
            if pick < apartments
            else "shop"
            if pick < apartments + SHOP_SHARE
            else "house"
        )
        line1 = f"{rng.choice(STREETS)} {rng.randint(100, 3999)}"
        written = rng.random() < MARKER_WRITTEN
        if building == "apartment" and written:
            line1 += f", Depto {rng.randint(1, 20)}{rng.randint(1, 4):02d}"
        elif building == "shop" and written:
            line1 += f", Local {rng.randint(1, 40)}"
        while (line1, city) in taken:  # one text, one customer: the world looks them up by it
            line1 += "-B"
        taken.add((line1, city))
        pool.append(
            CustomerAddress(
                line1=line1,
                city=city,
                hub=hub,
                lon=round(lon, 6),
                lat=round(lat, 6),
                building=building,
                area=area,
                weight=(rank + ZIPF_OFFSET) ** -ZIPF_EXPONENT,
            )
        )
    return tuple(pool)


@functools.lru_cache(maxsize=4)
def pool_by_text(city_seed: int = 42) -> dict[str, CustomerAddress]:
    return {address.text: address for address in address_pool(city_seed)}


def pick_address(reference: str, city_seed: int = 42) -> CustomerAddress:
    """The customer of a shipment (its own draw, by reference: the day's other draws stay)."""
    pool = address_pool(city_seed)
    cumulative = _cumulative_weights(city_seed)
    return seeded(city_seed, "customer", reference).choices(pool, cum_weights=cumulative)[0]


@functools.lru_cache(maxsize=4)
def _cumulative_weights(city_seed: int) -> list[float]:
    total, cumulative = 0.0, []
    for address in address_pool(city_seed):
        total += address.weight
        cumulative.append(total)
    return cumulative


# Shipments of a day relative to the average day, by weekday (Monday first): the weekend's
# orders arrive on Monday, Saturday is a half day, Sunday next to nothing.
WEEKDAY_VOLUME = (1.25, 1.05, 1.0, 1.0, 1.1, 0.55, 0.12)
PAYDAY_VOLUME = 1.3  # the 15th and the last business day of the month, and the day after
VOLUME_NOISE = 0.08  # day to day, everything else (uniform ±)


def paydays(year: int, month: int) -> set[date]:
    """The 15th and the last business day (Monday to Friday) of a month."""
    last = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    while last.weekday() >= 5:
        last -= timedelta(days=1)
    return {date(year, month, 15), last}


def after_payday(day: date) -> bool:
    """The payday itself or the day after (people order when paid)."""
    before = day - timedelta(days=1)
    return day in paydays(day.year, day.month) or before in paydays(before.year, before.month)


def day_volume(day: date, average: int) -> int:
    """How many shipments `day` brings when an average day brings `average` (at least 1)."""
    factor = WEEKDAY_VOLUME[day.weekday()] * (PAYDAY_VOLUME if after_payday(day) else 1.0)
    noise = random.Random(f"volume:{day.isoformat()}").uniform(-VOLUME_NOISE, VOLUME_NOISE)  # noqa: S311
    return max(1, round(average * factor * (1 + noise)))
