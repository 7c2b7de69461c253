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

from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point
from django.db import transaction

from carriers.models import Carrier, CarrierKind, Device, DeviceKind, Driver, Vehicle, VehicleKind
from carriers.services import device_create
from control_tower.models import Membership, Organization
from control_tower.services import api_key_create, organization_create
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import organization_scope
from tracking.models import Hub, HubKind, Route, Shipment
from tracking.simulation.demo_day import history_day, plan_day, reference_prefix

User = get_user_model()

DEMO_SLUG = "demo"
DEMO_NAME = "Coquimbo Express"
DEMO_TIME_ZONE = "America/Santiago"
DEMO_PASSWORD = "demo1234"
RIVAL_SLUG = "demo-rival"
SUPERUSER_EMAIL = "root@demo.example"


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
    region: str


HUBS = [
    HubSpec(
        "LSR",
        "La Serena cross-dock",
        "Av. Balmaceda 2885, La Serena",
        -29.9045,
        -71.2489,
        "La Serena",
    ),
    HubSpec(
        "CQB", "Coquimbo dark store", "Av. Videla 520, Coquimbo", -29.9533, -71.3394, "Coquimbo"
    ),
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
    world: str = "rich",
) -> DemoReport:
    """Create (or complete) the demo tenant and the plan of `service_date` (default: today in
    the demo's time zone), and `history_days` of past days played out by the simulator's world
    (`world`: "rich" or "simple", docs/SIMULATION.md; the rich one also sends every day's
    shipments to the city's customers). Safe to run again."""
    zone = ZoneInfo(DEMO_TIME_ZONE)
    service_date = service_date or datetime.now(zone).date()
    organization = _ensure_organization(DEMO_SLUG, DEMO_NAME, "owner@demo.example")
    _ensure_rival()
    with organization_scope(organization):
        actor, carriers, hubs, tokens = _ensure_tenant(organization)
        report = DemoReport(organization=organization, service_date=service_date, created_day=False)
        report.device_tokens = tokens
        for back in range(history_days, 0, -1):
            report.history_routes += history_day(
                actor,
                service_date - timedelta(days=back),
                zone,
                hubs,
                carriers,
                shipment_count,
                seed,
                world,
            )
        if not Route.objects.filter(date=service_date).exists():
            with transaction.atomic():
                plan_day(
                    actor,
                    service_date,
                    zone,
                    hubs,
                    carriers,
                    shipment_count,
                    person_route=True,
                    world=world,
                )
            report.created_day = True
        report.shipments = Shipment.objects.filter(
            reference__startswith=reference_prefix(service_date)
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
    organization = _ensure_organization(DEMO_SLUG, DEMO_NAME, "owner@demo.example")
    with organization_scope(organization):
        actor, carriers, hubs, _tokens = _ensure_tenant(organization)
        if not Route.objects.filter(date=service_date).exists():
            with transaction.atomic():
                plan_day(actor, service_date, zone, hubs, carriers, shipment_count, run_some=False)
    return organization


# ---------------------------------------------------------------------------------------------
# Tenant, people, fleet (once)
# ---------------------------------------------------------------------------------------------


def _ensure_tenant(organization) -> tuple[Actor, dict[str, Carrier], dict[str, Hub], dict]:
    """The superuser, the organization's carriers, hubs, people and fleet (made once), and the
    owner acting. Returns (actor, carriers, hubs, device tokens made this time)."""
    _ensure_superuser()
    owner = Membership.objects.select_related("user").get(user__email="owner@demo.example")
    actor = Actor(organization=organization, user=owner.user, role=Role.OWNER)
    carriers = _ensure_carriers(organization)
    hubs = _ensure_hubs(organization)
    _ensure_people(actor, carriers)
    return actor, carriers, hubs, _ensure_fleet(organization, carriers)


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
        hub, _ = Hub.objects.get_or_create(
            organization=organization,
            code=spec.code,
            defaults={
                "name": spec.name,
                "address": spec.address,
                "kind": HubKind.HUB if spec.code == "LSR" else HubKind.DARK_STORE,
                "location": Point(spec.lon, spec.lat, srid=4326),
                "region": spec.region,
            },
        )
        if not hub.region:  # a demo loaded before hubs had regions
            hub.region = spec.region
            hub.save(update_fields=["region"])
        hubs[spec.code] = hub
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
