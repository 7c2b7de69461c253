"""One demo service day: ~150 shipments received at the hubs, the day's routes planned (by the
VRP solver, or one per driver when the solver has no road network), and for today a few routes
already under way with delivered (with proof of delivery) and failed stops; past days are
played out by the simulator's world (`history_day`). Used by `load_demo` and the exceptions
evaluation (tracking/simulation/demo.py)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, time, timedelta
from datetime import date as Date
from io import BytesIO
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from django.contrib.gis.geos import LineString, Point
from django.db import transaction

from carriers.models import Device, Driver, Vehicle
from control_tower.events import backfill
from tracking.geo import point_distance_m
from tracking.ingest.image_sanitizer import sanitize_image
from tracking.models import FailureReason, Route, ServiceType, ShipmentStatus
from tracking.services.proof_of_delivery import PodInput, pod_capture
from tracking.services.route_planning import VehicleShift, plan_routes
from tracking.services.routes import route_plan_create, route_start
from tracking.services.shipments import shipment_transition, shipments_bulk_create
from tracking.services.stops import stop_complete, stop_fail
from tracking.simulation.city import AREAS, STREETS, day_volume, pick_address
from tracking.simulation.history import replay_day
from tracking.simulation.person_route import (
    PERSON_DRIVER,
    PERSON_HUB,
    PERSON_START_AFTER,
    person_route_code,
    take_person_items,
)
from tracking.simulation.runner import _pod_images
from tracking.simulation.timeline import cached_legs, leg_path
from tracking.simulation.world import World, WorldConfig

SERVICE_TIME_S = 180
ROUTE_START = time(9, 0)
# History days plan legs at the free-flow time times this (the planner's usual allowance for
# traffic), so the plan is one a good carrier keeps and a slow one does not.
HISTORY_TRAFFIC_ALLOWANCE = 1.3
# What was sold, by share of a day's shipments (history days; today's follow its windows).
SERVICE_MIX = [
    (ServiceType.SCHEDULED, 35),
    (ServiceType.SAME_DAY, 20),
    (ServiceType.NEXT_DAY, 25),
    (ServiceType.STANDARD, 20),
]

FIRST_NAMES = [
    "Camila",
    "Matías",
    "Valentina",
    "Benjamín",
    "Francisca",
    "Joaquín",
    "Catalina",
    "Diego",
    "Fernanda",
    "Tomás",
    "Javiera",
    "Sebastián",
    "Isidora",
    "Vicente",
    "Antonia",
    "Cristóbal",
]
LAST_NAMES = [
    "González",
    "Muñoz",
    "Rojas",
    "Díaz",
    "Pérez",
    "Soto",
    "Contreras",
    "Silva",
    "Martínez",
    "Sepúlveda",
    "Morales",
    "Rodríguez",
    "López",
    "Fuentes",
    "Araya",
    "Castillo",
]


# ---------------------------------------------------------------------------------------------
# One service day
# ---------------------------------------------------------------------------------------------


def reference_prefix(service_date: Date) -> str:
    return f"CQX-{service_date:%Y%m%d}-"


def history_day(actor, day, zone, hubs, carriers, shipment_count, seed, world="simple") -> int:
    """Plan a past day (once) and let the simulator's world play it out; routes replayed.
    The rich world's days bring as many shipments as their weekday and paydays say
    (`city.day_volume`, `shipment_count` on an average day), to its customers' addresses."""
    if Route.objects.filter(date=day).exists():
        return 0
    if world == "rich":
        shipment_count = day_volume(day, shipment_count)
    with cached_legs():  # the replay drives the legs the plan just routed
        # A past day's shipments were created and received then: their events are history
        # too (no tracking link is sent to last week's customers).
        with backfill(), transaction.atomic():
            plan_day(
                actor,
                day,
                zone,
                hubs,
                carriers,
                shipment_count,
                run_some=False,
                history=True,
                world=world,
            )
        config = WorldConfig(kind=world, seed=seed)
        return replay_day(actor.organization, day, World(config))["routes"]


def plan_day(
    actor,
    service_date,
    zone,
    hubs,
    carriers,
    shipment_count,
    *,
    run_some=True,
    history=False,
    person_route=False,
    world="simple",
) -> None:
    """`history`: a past day whose scheduled deliveries got a window around their planned
    time (`_plan_history_day`); otherwise windows are drawn before planning. `person_route`:
    a few of the day's shipments go on DRV-001's route, for a person to work in the driver app
    (tracking/simulation/person_route.py), and the rest to the other drivers. `world`: "rich"
    sends the shipments to the city's customers (`city.pick_address`: addresses that
    reorder, with their units written), "simple" to a random point of an area."""
    rng = random.Random(service_date.toordinal())  # noqa: S311 (repeatable demo data)
    day_start = _day_start(service_date, zone)
    items = [
        _shipment_item(rng, service_date, day_start, number, hubs, carriers)
        for number in range(1, shipment_count + 1)
    ]
    if world == "rich":
        today: set[str] = set()
        for item in items:
            _to_customer(item, hubs, today)
    if history:
        _plan_history_day(actor, service_date, day_start, hubs, items)
        return
    chosen = take_person_items(items, hubs, day_start) if person_route else []
    by_hand = {item["reference"] for item in chosen}
    shipments = _create_at_hub(actor, items, day_start)
    leave_out: tuple[str, ...] = ()
    if by_hand:
        mine = [s for s in shipments if s.reference in by_hand]
        if _person_route(actor, service_date, day_start, hubs, mine):
            shipments = [s for s in shipments if s.reference not in by_hand]
            leave_out = (PERSON_DRIVER,)
    routes = _routes_for(
        actor, service_date, day_start, hubs, shipments, solver=run_some, leave_out=leave_out
    )
    if run_some:
        _run_some_routes(actor, routes, rng)


def _create_at_hub(actor, items: list[dict], day_start: datetime) -> list:
    shipments = shipments_bulk_create(actor=actor, items=items)
    for shipment in shipments:
        shipment_transition(
            shipment=shipment,
            to_status=ShipmentStatus.AT_HUB,
            actor=actor,
            at=day_start - timedelta(hours=2),
            source="scan",
            note="Demo: received at hub",
        )
    return shipments


def _plan_history_day(actor, service_date, day_start, hubs, items: list[dict]) -> None:
    """A past day as a carrier would have sold and planned it: each shipment gets a service
    type (SERVICE_MIX); the routes are planned first (on drafts), then a scheduled delivery's
    two-hour window is the slot around its planned arrival that the customer was offered, a
    same-day one has the first six hours, the others the whole day. So on-time rates measure
    the carriers (late against a plan they could keep), not a random draw of windows that
    half the deliveries would reach early."""
    for item in items:
        pick = random.Random(f"service:{item['reference']}")  # noqa: S311
        item["service_type"] = pick.choices(
            [kind for kind, _ in SERVICE_MIX], weights=[w for _, w in SERVICE_MIX]
        )[0]
        hours = 6 if item["service_type"] == ServiceType.SAME_DAY else 9
        item["promised_window_start"] = day_start
        item["promised_window_end"] = day_start + timedelta(hours=hours)
    drafts = [
        SimpleNamespace(
            item=item,
            location=item["location"],
            hub_id=item["hub"].pk,
            address_line1=item["address_line1"],
            city=item["city"],
            promised_window_start=None,
            promised_window_end=None,
        )
        for item in items
    ]
    specs = _heuristic_specs(day_start, hubs, drafts, traffic=HISTORY_TRAFFIC_ALLOWANCE)
    for spec in specs:
        for stop in spec["stops"]:
            item = stop["shipments"][0].item
            if item["service_type"] == ServiceType.SCHEDULED:
                offer = stop["planned_arrival"] - timedelta(
                    minutes=random.Random(f"slot:{item['reference']}").uniform(40, 80)  # noqa: S311
                )
                begin = max(day_start, offer.replace(minute=offer.minute - offer.minute % 30))
                begin = begin.replace(second=0, microsecond=0)
                item["promised_window_start"] = begin
                item["promised_window_end"] = begin + timedelta(hours=2)
            stop["window_start"] = item["promised_window_start"]
            stop["window_end"] = item["promised_window_end"]
    shipments = {s.reference: s for s in _create_at_hub(actor, items, day_start)}
    for spec in specs:
        for stop in spec["stops"]:
            stop["shipments"] = [shipments[d.item["reference"]] for d in stop["shipments"]]
    route_plan_create(actor=actor, date=service_date, routes=specs)


def _day_start(service_date: Date, zone: ZoneInfo) -> datetime:
    """Today's demo day began two hours ago, whatever the hour, so that a demo
    loaded at any time has routes under way with a past (never a future) history. Other days
    start at 09:00."""
    now = datetime.now(zone)
    if service_date != now.date():
        return datetime.combine(service_date, ROUTE_START, tzinfo=zone)
    start = now - timedelta(minutes=120)
    return start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)


def _shipment_item(rng, service_date, day_start, number, hubs, carriers) -> dict:
    weights = [area[3] for area in AREAS]
    lat0, lon0, radius_km, _w, city, hub_code = rng.choices(AREAS, weights=weights)[0]
    distance = radius_km * math.sqrt(rng.random())
    bearing = rng.uniform(0, 2 * math.pi)
    lat = lat0 + (distance / 111.32) * math.cos(bearing)
    lon = lon0 + (distance / (111.32 * math.cos(math.radians(lat0)))) * math.sin(bearing)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    window = rng.choice([(0, 4), (1, 5), (4, 8), (5, 9), (0, 9)])  # hours after the start
    reference = f"{reference_prefix(service_date)}{number:04d}"
    return {
        "reference": reference,
        "barcode": reference.replace("-", ""),
        "hub": hubs[hub_code],
        "recipient_name": f"{first} {last}",
        "recipient_phone": f"+56 9 {rng.randint(4000, 9999)} {rng.randint(1000, 9999)}",
        "recipient_email": f"{first.lower()}.{number}@example.com".encode(
            "ascii", "ignore"
        ).decode(),
        "address_line1": f"{rng.choice(STREETS)} {rng.randint(100, 3999)}",
        "city": city,
        "country_code": "CL",
        "location": Point(round(lon, 6), round(lat, 6), srid=4326),
        "parcel_count": rng.choice([1, 1, 1, 2, 3]),
        "promised_window_start": day_start + timedelta(hours=window[0]),
        "promised_window_end": day_start + timedelta(hours=window[1]),
        "service_type": _service_for(window, reference),
        "delivery_instructions": rng.choice(
            ["", "", "", "Leave with the concierge.", "Call on arrival.", "Gate code 1942."]
        ),
    }


def _to_customer(item: dict, hubs, today: set[str]) -> None:
    """Send a drawn shipment to one of the city's customers instead (its own draw by
    reference, after the day's: the rest of the item stays as drawn). A customer gets one
    shipment a day (`today`: those served already): a second order the same day would travel
    with the first, and two windows at one door make no stop."""
    attempt, customer = 0, pick_address(item["reference"])
    while customer.text in today:
        attempt += 1
        customer = pick_address(f"{item['reference']}#{attempt}")
    today.add(customer.text)
    item["hub"] = hubs[customer.hub]
    item["address_line1"] = customer.line1
    item["city"] = customer.city
    item["location"] = Point(customer.lon, customer.lat, srid=4326)


def _service_for(window: tuple[int, int], reference: str) -> str:
    """What a window of the day says was sold (its own draw: the day's other draws stay)."""
    if window == (0, 9):
        pick = random.Random(f"service:{reference}")  # noqa: S311
        return ServiceType.NEXT_DAY if pick.random() < 0.5 else ServiceType.STANDARD
    return ServiceType.SAME_DAY if window[0] <= 1 else ServiceType.SCHEDULED


def _routes_for(
    actor, service_date, day_start, hubs, shipments, *, solver=True, leave_out=()
) -> list[Route]:
    """Today's plan comes from the VRP solver on the road network (what a dispatcher would
    run); history days use a quick heuristic (angular sectors, nearest neighbour), which keeps
    weeks of history to seconds a day. Drivers in `leave_out` (external ids) get no route."""
    plan = _drivers_plan(leave_out=leave_out)
    if solver:
        return _solver_routes(actor, service_date, day_start, hubs, shipments, plan)
    specs = _heuristic_specs(day_start, hubs, shipments, plan=plan)
    return route_plan_create(actor=actor, date=service_date, routes=specs)


def _drivers_plan(*, leave_out=()) -> dict:
    """Which drivers work out of which hub, in order of use. A driver in `leave_out` gives
    their place to the next colleague of the same carrier (a phone of the same kind)."""
    drivers = list(Driver.objects.select_related("carrier").order_by("external_id"))
    # La Serena (the bigger city) gets 6 routes, Coquimbo 4; fewer if there are few parcels.
    plan = {
        # Mixed so that even a small day has phones of each kind (app, OwnTracks, tracker).
        "LSR": [drivers[i] for i in (0, 7, 4, 1, 2, 5)],
        "CQB": [drivers[i] for i in (6, 3, 8, 9)],
    }
    return {hub: _stand_ins(hub_drivers, leave_out) for hub, hub_drivers in plan.items()}


def _stand_ins(hub_drivers: list, leave_out) -> list:
    kept = [driver for driver in hub_drivers if driver.external_id not in leave_out]
    order: list = []
    for driver in hub_drivers:
        if driver.external_id in leave_out:
            driver = next(
                (d for d in kept if d.carrier_id == driver.carrier_id and d not in order), None
            )
        if driver is not None and driver not in order:
            order.append(driver)
    return order


def _person_route(actor, service_date, day_start, hubs, shipments) -> Route | None:
    """PERSON_DRIVER's route of `shipments` (tracking/simulation/person_route.py), in the
    vehicle of their phone, leaving PERSON_START_AFTER after the others; None without that
    driver (then the shipments go to the fleet)."""
    driver = Driver.objects.filter(external_id=PERSON_DRIVER).select_related("carrier").first()
    if driver is None or not shipments:
        return None
    spec = _route_spec(
        hubs[PERSON_HUB],
        driver,
        _phone_vehicles().get(driver.pk),
        shipments,
        day_start + PERSON_START_AFTER,
        0,
    )
    spec["code"] = person_route_code()
    (route,) = route_plan_create(actor=actor, date=service_date, routes=[spec])
    return route


def _heuristic_specs(
    day_start, hubs, shipments, *, traffic: float = 1.0, plan: dict | None = None
) -> list[dict]:
    """Route specs by angular sectors and nearest neighbour (`shipments`: anything with the
    shipment's location, hub_id, address and window attributes)."""
    plan = plan or _drivers_plan()
    vehicles = {v.carrier_id: [] for v in Vehicle.objects.all()}
    for vehicle in Vehicle.objects.order_by("plate"):
        vehicles[vehicle.carrier_id].append(vehicle)
    # Each driver in the vehicle of their phone, as the solver plans it: one vehicle is never on
    # two routes at once (the exception rules tell routes apart by their driver's and vehicle's
    # devices).
    own_vehicle = _phone_vehicles()
    specs = []
    for hub, hub_drivers, mine, count in _hub_batches(plan, hubs, shipments):
        # Angular sectors around the hub make compact routes.
        mine.sort(
            key=lambda s: math.atan2(s.location.y - hub.location.y, s.location.x - hub.location.x)
        )
        size = math.ceil(len(mine) / count)
        for index in range(count):
            chunk = mine[index * size : (index + 1) * size]
            if not chunk:
                continue
            driver = hub_drivers[index]
            vehicle = (
                own_vehicle.get(driver.pk)
                or vehicles[driver.carrier_id][index % len(vehicles[driver.carrier_id])]
            )
            specs.append(
                _route_spec(hub, driver, vehicle, chunk, day_start, len(specs) + 1, traffic)
            )
    return specs


def _phone_vehicles() -> dict:
    """Each driver's vehicle, as their phone's device record says."""
    return {
        device.driver_id: device.vehicle
        for device in Device.objects.filter(
            driver__isnull=False, vehicle__isnull=False
        ).select_related("vehicle")
    }


def _hub_batches(plan, hubs, shipments):
    """Per hub with shipments: (hub, its drivers, its shipments, how many routes: about 15
    parcels a route, at most one per driver)."""
    for hub_code, hub_drivers in plan.items():
        hub = hubs[hub_code]
        mine = [s for s in shipments if s.hub_id == hub.pk]
        if mine:
            yield hub, hub_drivers, mine, max(1, min(len(hub_drivers), math.ceil(len(mine) / 15)))


def _solver_routes(actor, service_date, day_start, hubs, shipments, plan) -> list[Route]:
    own_vehicle = _phone_vehicles()
    routes = []
    for hub, hub_drivers, mine, count in _hub_batches(plan, hubs, shipments):
        shifts = [
            VehicleShift(own_vehicle[driver.pk], driver, day_start, day_start + timedelta(hours=10))
            for driver in hub_drivers[:count]
        ]
        result = plan_routes(
            actor=actor,
            hub=hub,
            date=service_date,
            vehicles=shifts,
            shipments=mine,
            service_s=SERVICE_TIME_S,
            max_stops_per_route=math.ceil(len(mine) / count) + 2,
        )
        routes.extend(result.routes)
    return routes


def _route_spec(hub, driver, vehicle, chunk, day_start, number, traffic: float = 1.0) -> dict:
    order, here = [], hub.location
    remaining = list(chunk)
    while remaining:
        nearest = min(remaining, key=lambda s: point_distance_m(here, s.location))
        remaining.remove(nearest)
        order.append(nearest)
        here = nearest.location
    # Legs on the road network when one is loaded (straight lines otherwise).
    stops, at, here, meters = [], day_start, hub.location, 0.0
    coords: list = []
    for shipment in order:
        leg = leg_path(here, shipment.location)
        meters += leg.length_m
        coords.extend(leg.geometry.coords if not coords else leg.geometry.coords[1:])
        at = at + timedelta(seconds=leg.duration_s * traffic)
        stops.append(
            {
                "location": shipment.location,
                "address": f"{shipment.address_line1}, {shipment.city}",
                "window_start": shipment.promised_window_start,
                "window_end": shipment.promised_window_end,
                "planned_arrival": at,
                "planned_service_s": SERVICE_TIME_S,
                "shipments": [shipment],
            }
        )
        at = at + timedelta(seconds=SERVICE_TIME_S)
        here = shipment.location
    back = leg_path(here, hub.location)
    meters += back.length_m
    coords.extend(back.geometry.coords[1:])
    end = at + timedelta(seconds=back.duration_s * traffic)
    return {
        "code": f"{hub.code}-{number:02d}",
        "hub": hub,
        "carrier": driver.carrier,
        "driver": driver,
        "vehicle": vehicle,
        "planned_start": day_start,
        "planned_end": end,
        "planned_geometry": LineString(coords, srid=4326),
        "planned_distance_m": int(meters),
        "planned_duration_s": int((end - day_start).total_seconds()),
        "stops": stops,
    }


def _run_some_routes(actor, routes: list[Route], rng) -> None:
    """Put three routes on the road: their first stops (those already due) delivered, one
    failed attempt. Nothing is dated in the future."""
    now = datetime.now(UTC)
    for route in routes[:3]:
        stops = list(route.stops.order_by("sequence")[:4])
        for index, stop in enumerate(stops):
            at = stop.planned_arrival + timedelta(minutes=rng.randint(-4, 12))
            if at > now:
                if index == 0:
                    route_start(route=route, actor=actor, at=min(route.planned_start, now))
                break
            if index == 2 and len(routes) > 1 and route is routes[1]:
                stop_fail(
                    stop=stop,
                    reason=FailureReason.NOT_HOME,
                    actor=actor,
                    at=at,
                    note="Demo: nobody answered",
                )
            else:
                deliver_with_proof(actor, stop, at)


def deliver_with_proof(actor, stop, at: datetime) -> None:
    """Complete a delivery stop the way a driver's phone does: a proof of delivery (a photo
    and a signature) per parcel, through the POD service, so the demo's deliveries of the
    day already have what the console and the tracking page show."""
    photo_bytes, signature_bytes = _pod_images(f"{stop.route.code} #{stop.sequence}")
    photo = sanitize_image(BytesIO(photo_bytes), kind="photo")
    signature = sanitize_image(BytesIO(signature_bytes), kind="signature")
    shipments = list(stop.shipments.order_by("pk"))
    if not shipments:
        stop_complete(stop=stop, actor=actor, at=at)
        return
    for shipment in shipments:
        pod_capture(
            actor=actor,
            shipment=shipment,
            data=PodInput(
                idempotency_key=f"demo-{stop.route.date}-{stop.route.code}-{shipment.pk}",
                captured_at=at,
                recipient_name=shipment.recipient_name,
                location=stop.location,
                stop=stop,
            ),
            photos=[photo],
            signature=signature,
        )
