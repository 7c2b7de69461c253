"""The demo tenant: Coquimbo Express, a parcel operation in Coquimbo–La Serena (Chile).

`load_demo()` builds one service day through the same services the API uses (so the demo also
exercises them): people for every role, four carriers (one of each kind), two hubs, drivers with
vehicles and devices, ~150 shipments and ~10 planned routes, a few of them already under way
with delivered and failed stops. It is idempotent: the organization, people and fleet are made
once; each service day's shipments and routes are made once per date (references carry the
date). A small rival tenant shows that nothing leaks between organizations.

Coordinates are synthetic points in the two cities; the road network and the live simulation
come with the routing work (OpenStreetMap data, ODbL).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from datetime import date as Date
from io import BytesIO
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.gis.geos import LineString, Point
from django.db import transaction

from carriers.models import Carrier, CarrierKind, Device, DeviceKind, Driver, Vehicle, VehicleKind
from carriers.services import device_create
from control_tower.models import Membership, Organization
from control_tower.services import api_key_create, organization_create
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import organization_scope
from tracking.geo import point_distance_m
from tracking.ingest.image_sanitizer import sanitize_image
from tracking.models import FailureReason, Hub, HubKind, Route, Shipment, ShipmentStatus
from tracking.roads.routing import route_path
from tracking.services.proof_of_delivery import PodInput, pod_capture
from tracking.services.route_planning import VehicleShift, plan_routes
from tracking.services.routes import route_plan_create, route_start
from tracking.services.shipments import shipment_transition, shipments_bulk_create
from tracking.services.stops import stop_complete, stop_fail
from tracking.simulation.history import replay_day
from tracking.simulation.runner import _pod_images
from tracking.simulation.world import World, WorldConfig

User = get_user_model()

DEMO_SLUG = "demo"
DEMO_NAME = "Coquimbo Express"
DEMO_TIME_ZONE = "America/Santiago"
DEMO_PASSWORD = "demo1234"
RIVAL_SLUG = "demo-rival"
SUPERUSER_EMAIL = "root@demo.example"

SERVICE_TIME_S = 180
ROUTE_START = time(9, 0)

PEOPLE = [
    # (e-mail, role, carrier code for carrier users / drivers)
    ("owner@demo.example", Role.OWNER, None),
    ("admin@demo.example", Role.ADMIN, None),
    ("dispatcher@demo.example", Role.DISPATCHER, None),
    ("ops@demo.example", Role.OPS_MANAGER, None),
    ("carrier@demo.example", Role.CARRIER_USER, "andes3pl"),
    ("driver@demo.example", Role.DRIVER, "cqx"),
]

CARRIERS = [
    # code, name, kind, on-time target %, first-attempt target %
    ("cqx", "Coquimbo Express fleet", CarrierKind.IN_HOUSE, "95.0", "90.0"),
    ("andes3pl", "Andes Logística 3PL", CarrierKind.THIRD_PARTY, "92.0", "88.0"),
    ("elqui", "Courier Valle del Elqui", CarrierKind.REGIONAL_COURIER, "90.0", "85.0"),
    ("rapidos", "Rápidos gig drivers", CarrierKind.GIG, "85.0", "80.0"),
]


@dataclass(frozen=True)
class HubSpec:
    code: str
    name: str
    address: str
    lat: float
    lon: float


HUBS = [
    HubSpec("LSR", "La Serena cross-dock", "Av. Balmaceda 2885, La Serena", -29.9045, -71.2489),
    HubSpec("CQB", "Coquimbo dark store", "Av. Videla 520, Coquimbo", -29.9533, -71.3394),
]

# Delivery areas: (centre lat, lon, radius km, weight, city, hub code)
AREAS = [
    (-29.9050, -71.2500, 2.2, 4, "La Serena", "LSR"),
    (-29.9220, -71.2600, 1.8, 3, "La Serena", "LSR"),
    (-29.8880, -71.2400, 1.5, 2, "La Serena", "LSR"),
    (-29.9530, -71.3380, 1.8, 3, "Coquimbo", "CQB"),
    (-29.9700, -71.3300, 1.5, 2, "Coquimbo", "CQB"),
    (-29.9400, -71.3100, 1.5, 2, "Coquimbo", "CQB"),
]

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

# (carrier code, driver name, vehicle kind, plate, device kind)
FLEET = [
    ("cqx", "Rodrigo Araya", VehicleKind.VAN, "CQX-01", DeviceKind.DRIVER_APP),
    ("cqx", "Paula Castillo", VehicleKind.VAN, "CQX-02", DeviceKind.DRIVER_APP),
    ("cqx", "Ignacio Rojas", VehicleKind.VAN, "CQX-03", DeviceKind.DRIVER_APP),
    ("cqx", "Daniela Soto", VehicleKind.CAR, "CQX-04", DeviceKind.DRIVER_APP),
    ("andes3pl", "Marcelo Fuentes", VehicleKind.TRUCK, "AND-11", DeviceKind.TRACCAR_CLIENT),
    ("andes3pl", "Carolina Pérez", VehicleKind.VAN, "AND-12", DeviceKind.TRACCAR_CLIENT),
    ("andes3pl", "Luis Morales", VehicleKind.VAN, "AND-13", DeviceKind.GPS_TRACKER),
    ("elqui", "Gabriela Díaz", VehicleKind.VAN, "ELQ-21", DeviceKind.OWNTRACKS),
    ("elqui", "Felipe Contreras", VehicleKind.CAR, "ELQ-22", DeviceKind.OWNTRACKS),
    ("rapidos", "Nicolás Silva", VehicleKind.MOTORBIKE, "RAP-31", DeviceKind.DRIVER_APP),
    ("rapidos", "Constanza Muñoz", VehicleKind.CARGO_BIKE, "RAP-32", DeviceKind.DRIVER_APP),
    ("rapidos", "Andrés López", VehicleKind.CAR, "RAP-33", DeviceKind.DRIVER_APP),
]


@dataclass
class DemoReport:
    organization: Organization
    service_date: Date
    created_day: bool
    shipments: int = 0
    routes: int = 0
    api_key: str = ""
    history_routes: int = 0
    device_tokens: dict[str, str] = field(default_factory=dict)


def load_demo(
    *,
    service_date: Date | None = None,
    shipment_count: int = 150,
    history_days: int = 0,
    seed: int = 42,
) -> DemoReport:
    """Create (or complete) the demo tenant and the plan of `service_date` (default: today in
    the demo's time zone), and `history_days` of past days played out by the simulator's world.
    Safe to run again."""
    zone = ZoneInfo(DEMO_TIME_ZONE)
    service_date = service_date or datetime.now(zone).date()
    _ensure_superuser()
    organization = _ensure_organization(DEMO_SLUG, DEMO_NAME, "owner@demo.example")
    _ensure_rival()
    with organization_scope(organization):
        owner = Membership.objects.select_related("user").get(user__email="owner@demo.example")
        actor = Actor(organization=organization, user=owner.user, role=Role.OWNER)
        carriers = _ensure_carriers(organization)
        hubs = _ensure_hubs(organization)
        _ensure_people(actor, carriers)
        report = DemoReport(organization=organization, service_date=service_date, created_day=False)
        report.device_tokens = _ensure_fleet(organization, carriers)
        for back in range(history_days, 0, -1):
            report.history_routes += _history_day(
                actor,
                service_date - timedelta(days=back),
                zone,
                hubs,
                carriers,
                shipment_count,
                seed,
            )
        if not Route.objects.filter(date=service_date).exists():
            with transaction.atomic():
                _plan_day(actor, service_date, zone, hubs, carriers, shipment_count, report)
            report.created_day = True
        report.shipments = Shipment.objects.filter(
            reference__startswith=_reference_prefix(service_date)
        ).count()
        report.routes = Route.objects.filter(date=service_date).count()
        _key, report.api_key = api_key_create(
            actor=actor,
            name=f"demo key {datetime.now(zone):%Y-%m-%d %H:%M}",
            scopes=[scope.value for scope in Scope],
        )
    return report


def plan_unplayed_day(service_date: Date, shipment_count: int) -> Organization:
    """The demo tenant and a planned day that nobody has started (none of its routes run):
    what the exceptions evaluation plays out at simulated time. Safe to run again."""
    zone = ZoneInfo(DEMO_TIME_ZONE)
    _ensure_superuser()
    organization = _ensure_organization(DEMO_SLUG, DEMO_NAME, "owner@demo.example")
    with organization_scope(organization):
        owner = Membership.objects.select_related("user").get(user__email="owner@demo.example")
        actor = Actor(organization=organization, user=owner.user, role=Role.OWNER)
        carriers = _ensure_carriers(organization)
        hubs = _ensure_hubs(organization)
        _ensure_people(actor, carriers)
        _ensure_fleet(organization, carriers)
        if not Route.objects.filter(date=service_date).exists():
            with transaction.atomic():
                _plan_day(
                    actor, service_date, zone, hubs, carriers, shipment_count, None, run_some=False
                )
    return organization


# ---------------------------------------------------------------------------------------------
# Tenant, people, fleet (once)
# ---------------------------------------------------------------------------------------------


def _ensure_superuser() -> None:
    if not User.objects.filter(email=SUPERUSER_EMAIL).exists():
        User.objects.create_superuser(
            username=SUPERUSER_EMAIL, email=SUPERUSER_EMAIL, password=DEMO_PASSWORD
        )


def _ensure_organization(slug: str, name: str, owner_email: str) -> Organization:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None:
        organization = organization_create(
            slug=slug,
            name=name,
            time_zone=DEMO_TIME_ZONE,
            owner_email=owner_email,
            owner_password=DEMO_PASSWORD,
        )
        organization.support_phone = "+56 51 220 0000"
        organization.support_email = f"help@{slug}.example"
        organization.primary_color = "#0b7a75" if slug == DEMO_SLUG else "#b42318"
        organization.save(update_fields=["support_phone", "support_email", "primary_color"])
    return organization


def _ensure_rival() -> None:
    rival = _ensure_organization(RIVAL_SLUG, "Rival Parcels", "owner@rival.example")
    with organization_scope(rival):
        carrier, _ = Carrier.objects.get_or_create(
            organization=rival,
            code="rival",
            defaults={"name": "Rival fleet", "kind": CarrierKind.IN_HOUSE},
        )
        Hub.objects.get_or_create(
            organization=rival,
            code="RIV",
            defaults={"name": "Rival depot", "location": Point(-71.26, -29.91, srid=4326)},
        )
        Shipment.objects.get_or_create(
            organization=rival,
            reference="RIVAL-0001",
            defaults={
                "barcode": "RIVAL0001",
                "carrier": carrier,
                "recipient_name": "Rival customer",
                "address_line1": "Calle Rival 1",
                "city": "La Serena",
                "country_code": "CL",
                "location": Point(-71.255, -29.908, srid=4326),
            },
        )


def _ensure_carriers(organization) -> dict[str, Carrier]:
    carriers = {}
    for code, name, kind, on_time, first_attempt in CARRIERS:
        carriers[code], _ = Carrier.objects.get_or_create(
            organization=organization,
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "sla_on_time_target_pct": on_time,
                "sla_first_attempt_target_pct": first_attempt,
                "contact_email": f"ops@{code}.example",
            },
        )
    return carriers


def _ensure_hubs(organization) -> dict[str, Hub]:
    hubs = {}
    for spec in HUBS:
        hubs[spec.code], _ = Hub.objects.get_or_create(
            organization=organization,
            code=spec.code,
            defaults={
                "name": spec.name,
                "address": spec.address,
                "kind": HubKind.HUB if spec.code == "LSR" else HubKind.DARK_STORE,
                "location": Point(spec.lon, spec.lat, srid=4326),
            },
        )
    return hubs


def _ensure_people(actor: Actor, carriers: dict[str, Carrier]) -> None:
    """One person per role. The driver login is linked to the first driver by `_ensure_fleet`."""
    organization = actor.organization
    for email, role, carrier_code in PEOPLE:
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User(username=email, email=email)
            user.set_password(DEMO_PASSWORD)
            user.save()
        if not Membership.objects.filter(user=user).exists():
            Membership.objects.create(
                organization=organization,
                user=user,
                role=role,
                carrier=carriers[carrier_code] if role == Role.CARRIER_USER else None,
            )


def _ensure_fleet(organization, carriers: dict[str, Carrier]) -> dict[str, str]:
    """Drivers, vehicles and a device each. Returns raw tokens of devices made now (a token is
    only ever shown when it is issued)."""
    tokens = {}
    for index, (code, name, vehicle_kind, plate, device_kind) in enumerate(FLEET, start=1):
        carrier = carriers[code]
        driver, _ = Driver.objects.get_or_create(
            organization=organization,
            carrier=carrier,
            external_id=f"DRV-{index:03d}",
            defaults={"name": name, "phone": f"+56 9 5555 {index:04d}"},
        )
        vehicle, _ = Vehicle.objects.get_or_create(
            organization=organization,
            plate=plate,
            defaults={"carrier": carrier, "kind": vehicle_kind},
        )
        if not Device.objects.filter(external_id=f"DEV-{index:03d}").exists():
            device, raw = device_create(
                organization=organization,
                carrier=carrier,
                driver=driver,
                vehicle=vehicle,
                name=f"{name.split()[0]}'s phone"
                if device_kind != DeviceKind.GPS_TRACKER
                else f"Tracker {plate}",
                kind=device_kind,
                external_id=f"DEV-{index:03d}",
            )
            tokens[device.name] = raw
    driver_user = User.objects.filter(email="driver@demo.example").first()
    first = Driver.objects.filter(external_id="DRV-001").first()
    if driver_user and first and first.user_id is None:
        first.user = driver_user
        first.email = driver_user.email
        first.save(update_fields=["user", "email"])
    return tokens


# ---------------------------------------------------------------------------------------------
# One service day
# ---------------------------------------------------------------------------------------------


def _reference_prefix(service_date: Date) -> str:
    return f"CQX-{service_date:%Y%m%d}-"


def _history_day(actor, day, zone, hubs, carriers, shipment_count, seed) -> int:
    """Plan a past day (once) and let the simulator's world play it out; routes replayed."""
    if Route.objects.filter(date=day).exists():
        return 0
    with transaction.atomic():
        _plan_day(actor, day, zone, hubs, carriers, shipment_count, None, run_some=False)
    return replay_day(actor.organization, day, World(WorldConfig(seed=seed)))["routes"]


def _plan_day(
    actor, service_date, zone, hubs, carriers, shipment_count, report, *, run_some=True
) -> None:
    rng = random.Random(service_date.toordinal())  # noqa: S311 (repeatable demo data)
    day_start = _day_start(service_date, zone)
    items = [
        _shipment_item(rng, service_date, day_start, number, hubs, carriers)
        for number in range(1, shipment_count + 1)
    ]
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
    routes = _routes_for(actor, service_date, day_start, hubs, carriers, shipments, solver=run_some)
    if run_some:
        _run_some_routes(actor, routes, rng)


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
    reference = f"{_reference_prefix(service_date)}{number:04d}"
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
        "delivery_instructions": rng.choice(
            ["", "", "", "Leave with the concierge.", "Call on arrival.", "Gate code 1942."]
        ),
    }


def _routes_for(
    actor, service_date, day_start, hubs, carriers, shipments, *, solver=True
) -> list[Route]:
    """Today's plan comes from the VRP solver on the road network (what a dispatcher would
    run); history days use a quick heuristic (angular sectors, nearest neighbour), which keeps
    weeks of history to seconds a day."""
    drivers = list(Driver.objects.select_related("carrier").order_by("external_id"))
    vehicles = {v.carrier_id: [] for v in Vehicle.objects.all()}
    for vehicle in Vehicle.objects.order_by("plate"):
        vehicles[vehicle.carrier_id].append(vehicle)
    # La Serena (the bigger city) gets 6 routes, Coquimbo 4; fewer if there are few parcels.
    plan = {
        # Mixed so that even a small day has phones of each kind (app, OwnTracks, tracker).
        "LSR": [drivers[i] for i in (0, 7, 4, 1, 2, 5)],
        "CQB": [drivers[i] for i in (6, 3, 8, 9)],
    }
    if solver:
        return _solver_routes(actor, service_date, day_start, hubs, shipments, plan)
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
            specs.append(_route_spec(hub, driver, vehicle, chunk, day_start, len(specs) + 1))
    return route_plan_create(actor=actor, date=service_date, routes=specs)


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


def _route_spec(hub, driver, vehicle, chunk, day_start, number) -> dict:
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
        leg = route_path([here, shipment.location])
        meters += leg.length_m
        coords.extend(leg.geometry.coords if not coords else leg.geometry.coords[1:])
        at = at + timedelta(seconds=leg.duration_s)
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
    back = route_path([here, hub.location])
    meters += back.length_m
    coords.extend(back.geometry.coords[1:])
    end = at + timedelta(seconds=back.duration_s)
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
            if index == 2 and route is routes[1]:
                stop_fail(
                    stop=stop,
                    reason=FailureReason.NOT_HOME,
                    actor=actor,
                    at=at,
                    note="Demo: nobody answered",
                )
            else:
                _deliver_with_proof(actor, stop, at)


def _deliver_with_proof(actor, stop, at: datetime) -> None:
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
