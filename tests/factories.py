"""factory_boy factories. They write through the unscoped base manager on purpose: tests set up
rows of several organizations at once; the code under test then runs scoped."""

from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point
from django.utils import timezone

from carriers.models import Carrier, Device, Driver, Vehicle
from carriers.services import device_create
from control_tower.models import Membership, Organization
from control_tower.tenancy.roles import Role
from tracking.models import (
    EtaCalibration,
    EtaModel,
    Hub,
    Route,
    Shipment,
    Stop,
    StopShipment,
)

PASSWORD = "correct-horse-battery-staple"


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        obj = model_class(*args, **kwargs)
        obj.save()
        return obj


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    slug = factory.Sequence(lambda n: f"org-{n}")
    name = factory.Sequence(lambda n: f"Organization {n}")
    time_zone = "America/Santiago"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password(PASSWORD)


class CarrierFactory(TenantFactory):
    class Meta:
        model = Carrier

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"carrier-{n}")
    name = factory.Sequence(lambda n: f"Carrier {n}")
    kind = "3pl"


class MembershipFactory(TenantFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.DISPATCHER


class DriverFactory(TenantFactory):
    class Meta:
        model = Driver

    organization = factory.SubFactory(OrganizationFactory)
    carrier = factory.SubFactory(
        CarrierFactory, organization=factory.SelfAttribute("..organization")
    )
    name = factory.Sequence(lambda n: f"Driver {n}")
    phone = "+56 9 1234 5678"


class VehicleFactory(TenantFactory):
    class Meta:
        model = Vehicle

    organization = factory.SubFactory(OrganizationFactory)
    carrier = factory.SubFactory(
        CarrierFactory, organization=factory.SelfAttribute("..organization")
    )
    plate = factory.Sequence(lambda n: f"AB-{n:04d}")


class DeviceFactory(TenantFactory):
    class Meta:
        model = Device

    organization = factory.SubFactory(OrganizationFactory)
    carrier = factory.SubFactory(
        CarrierFactory, organization=factory.SelfAttribute("..organization")
    )
    name = factory.Sequence(lambda n: f"Phone {n}")
    kind = "driver_app"
    token_prefix = factory.Sequence(lambda n: f"{n:010d}")
    token_hash = "0" * 64


def make_device(**kwargs) -> tuple[Device, str]:
    organization = kwargs.pop("organization")
    carrier = kwargs.pop("carrier", None) or CarrierFactory(organization=organization)
    from control_tower.tenancy.scope import organization_scope

    with organization_scope(organization):
        return device_create(
            organization=organization, carrier=carrier, name="Phone", kind="driver_app", **kwargs
        )


class HubFactory(TenantFactory):
    class Meta:
        model = Hub

    organization = factory.SubFactory(OrganizationFactory)
    code = factory.Sequence(lambda n: f"hub-{n}")
    name = factory.Sequence(lambda n: f"Hub {n}")
    location = Point(-71.25, -29.9, srid=4326)


class ShipmentFactory(TenantFactory):
    class Meta:
        model = Shipment

    organization = factory.SubFactory(OrganizationFactory)
    reference = factory.Sequence(lambda n: f"REF-{n:06d}")
    barcode = factory.Sequence(lambda n: f"BC{n:010d}")
    recipient_name = "Ana Pérez"
    address_line1 = factory.Sequence(lambda n: f"Avenida del Mar {n}")
    city = "La Serena"
    country_code = "CL"
    location = Point(-71.27, -29.91, srid=4326)


class RouteFactory(TenantFactory):
    class Meta:
        model = Route

    organization = factory.SubFactory(OrganizationFactory)
    # The organization's today (its time zone), as the console and the driver app mean it: the
    # server's (UTC) date is tomorrow for Santiago between 00:00 and 03:00 UTC.
    date = factory.LazyAttribute(lambda o: timezone.now().astimezone(o.organization.zone).date())
    code = factory.Sequence(lambda n: f"R{n:03d}")
    hub = factory.SubFactory(HubFactory, organization=factory.SelfAttribute("..organization"))
    carrier = factory.SubFactory(
        CarrierFactory, organization=factory.SelfAttribute("..organization")
    )
    planned_start = factory.LazyFunction(lambda: timezone.now())
    planned_end = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=8))


class StopFactory(TenantFactory):
    class Meta:
        model = Stop

    organization = factory.SubFactory(OrganizationFactory)
    route = factory.SubFactory(RouteFactory, organization=factory.SelfAttribute("..organization"))
    sequence = factory.Sequence(lambda n: n + 1)
    location = Point(-71.26, -29.92, srid=4326)
    address = "Calle Larga 12"


def stop_with_shipments(*, route, sequence=1, count=1, **kwargs) -> Stop:
    stop = StopFactory(organization=route.organization, route=route, sequence=sequence, **kwargs)
    for _ in range(count):
        shipment = ShipmentFactory(organization=route.organization, carrier=route.carrier)
        StopShipment(organization=route.organization, stop=stop, shipment=shipment).save()
    return stop


def completed_route(
    *, organization, carrier, hub, start, points, travel_ratio, dwell_s=120.0, code=None
) -> Route:
    """A finished route of the past, as the ETA learning reads it: from the hub at `start`
    through `points`, each leg taking its free-flow time (tracking.roads.routing) times
    `travel_ratio(leg index, leg start)`, each stop `dwell_s`."""
    from tracking.roads.routing import travel_matrix

    route = RouteFactory(
        organization=organization,
        carrier=carrier,
        hub=hub,
        date=start.date(),
        status="completed",
        planned_start=start,
        started_at=start,
        **({"code": code} if code else {}),
    )
    free = travel_matrix([hub.location, *(Point(*p, srid=4326) for p in points)]).durations_s
    t = start
    for index, (lon, lat) in enumerate(points):
        arrival = t + dt.timedelta(seconds=free[index][index + 1] * travel_ratio(index, t))
        t = arrival + dt.timedelta(seconds=dwell_s)
        StopFactory(
            organization=organization,
            route=route,
            sequence=index + 1,
            location=Point(lon, lat, srid=4326),
            status="completed",
            actual_arrival=arrival,
            actual_departure=t,
        )
    route.completed_at = t
    route.save()
    return route


class EtaModelFactory(TenantFactory):
    class Meta:
        model = EtaModel

    organization = factory.SubFactory(OrganizationFactory)
    version = factory.Sequence(lambda n: n + 1)
    trained_at = factory.LazyFunction(timezone.now)
    trained_from = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=28))
    trained_until = factory.LazyFunction(timezone.localdate)
    legs = 100
    dwells = 100
    fingerprint = factory.Sequence(lambda n: f"{n:064x}")
    blob = b""
    travel_by_hour = factory.LazyFunction(lambda: {"8": 1.6})


class EtaCalibrationFactory(TenantFactory):
    class Meta:
        model = EtaCalibration

    organization = factory.SubFactory(OrganizationFactory)
    version = factory.Sequence(lambda n: n + 1)
    created_at = factory.LazyFunction(timezone.now)
    computed_from = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=14))
    computed_until = factory.LazyFunction(timezone.localdate)
    samples = 100
    buckets = factory.LazyFunction(lambda: {"0-15": {"p10_min": -3.0, "p90_min": 4.0, "n": 100}})
    fingerprint = factory.Sequence(lambda n: f"{n:064x}")


# A running route of three stops around La Serena, today, with its driver's phone: what the ETA
# tests (estimation and ping triggers) start from.
ETA_HUB = (-71.2489, -29.9045)
ETA_POINTS = [(-71.2450, -29.9000), (-71.2400, -29.8950), (-71.2350, -29.8900)]


def running_route_with_phone(tenant, *, shipments: bool = True):
    """(route, device, raw device token): three stops with 3-minute service (each with an
    out-for-delivery shipment unless `shipments=False`), the driver's phone registered."""
    from control_tower.tenancy.scope import organization_scope

    org = tenant.organization
    driver = DriverFactory(organization=org, carrier=tenant.carrier)
    hub = HubFactory(organization=org, location=Point(*ETA_HUB, srid=4326))
    route = RouteFactory(
        organization=org,
        carrier=tenant.carrier,
        hub=hub,
        driver=driver,
        date=timezone.localdate(),
        status="in_progress",
    )
    for sequence, (lon, lat) in enumerate(ETA_POINTS, start=1):
        stop = Stop.objects.create(
            organization=org,
            route=route,
            sequence=sequence,
            location=Point(lon, lat, srid=4326),
            planned_service_s=180,
        )
        if shipments:
            shipment = ShipmentFactory(
                organization=org, carrier=tenant.carrier, status="out_for_delivery"
            )
            StopShipment.objects.create(organization=org, stop=stop, shipment=shipment)
    with organization_scope(org):
        device, token = device_create(
            organization=org,
            carrier=tenant.carrier,
            driver=driver,
            name="van phone",
            kind="driver_app",
        )
    return route, device, token
