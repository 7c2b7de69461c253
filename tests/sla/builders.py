"""A hand-built pair of service days with known answers (tests/sla/test_metrics.py states
each expected number and why). Rows are written directly, like the factories do: the SLA
code under test reads them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.contrib.gis.geos import Point
from django.db import connection

from exceptions.models import Alert
from tests.factories import (
    DeviceFactory,
    DriverFactory,
    HubFactory,
    RouteFactory,
    ShipmentFactory,
    StopFactory,
    VehicleFactory,
)
from tracking.models import (
    DeliveryRating,
    EtaRevision,
    PodFile,
    ProofOfDelivery,
    Scan,
    StopShipment,
)

DAY = dt.date(2026, 3, 2)
NEXT_DAY = DAY + dt.timedelta(days=1)


def local(organization, hour: int, minute: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=organization.zone)


@dataclass
class World:
    organization: object
    carrier: object
    hub: object
    driver: object
    route: object
    next_route: object
    stops: dict = field(default_factory=dict)
    shipments: dict = field(default_factory=dict)


_counter = {"n": 0}


def _key() -> str:
    _counter["n"] += 1
    return f"k{_counter['n']}"


def scan(organization, shipment, scan_type: str, at, *, result="applied", reason="") -> Scan:
    row = Scan(
        organization=organization,
        idempotency_key=_key(),
        barcode=shipment.barcode,
        shipment=shipment,
        scan_type=scan_type,
        occurred_at=at,
        result=result,
        reason_code=reason,
    )
    row.save()
    return row


def pod(organization, shipment, at, *, photo=True, signature=False, outside=False):
    proof = ProofOfDelivery(
        organization=organization,
        idempotency_key=_key(),
        shipment=shipment,
        captured_at=at,
        outside_geofence=outside,
    )
    proof.save()
    kinds = (["photo"] if photo else []) + (["signature"] if signature else [])
    for kind in kinds:
        PodFile(
            organization=organization,
            pod=proof,
            kind=kind,
            storage_name=_key(),
            content_type="image/jpeg",
            size_bytes=1,
            width=1,
            height=1,
            sha256="0" * 64,
        ).save()
    return proof


def stop(route, sequence, shipments, *, arrive, depart, status="completed", **extra):
    row = StopFactory(
        organization=route.organization,
        route=route,
        sequence=sequence,
        status=status,
        actual_arrival=arrive,
        actual_departure=depart,
        **extra,
    )
    for shipment in shipments:
        StopShipment(organization=route.organization, stop=row, shipment=shipment).save()
    return row


def pings(organization, device, start: dt.datetime, minutes: int, *, flags: int = 0) -> None:
    """One fix a minute for `minutes` minutes from `start`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracking_ping (organization_id, device_id, fix_time, event_id, "
            "received_at, location, source, flags, attributes, mock) "
            "SELECT %s, %s, t, '', t, ST_SetSRID(ST_MakePoint(-71.25, -29.9), 4326), "
            "'native', %s, '{}'::jsonb, false "
            "FROM generate_series(%s::timestamptz, %s::timestamptz, interval '1 minute') t",
            [
                organization.pk,
                device.pk,
                flags,
                start,
                start + dt.timedelta(minutes=minutes - 1),
            ],
        )


def build_world(tenant) -> World:
    org = tenant.organization
    carrier = tenant.carrier
    carrier.sla_grace_minutes = 10
    carrier.save()
    hub = HubFactory(organization=org, region="Norte")
    driver = DriverFactory(organization=org, carrier=carrier)
    vehicle = VehicleFactory(organization=org, carrier=carrier)
    device = DeviceFactory(organization=org, carrier=carrier, vehicle=vehicle)

    def at(h, m=0, day=DAY):
        return local(org, h, m, day)

    route = RouteFactory(
        organization=org,
        carrier=carrier,
        hub=hub,
        driver=driver,
        vehicle=vehicle,
        date=DAY,
        status="completed",
        planned_start=at(9),
        planned_end=at(13),
        started_at=at(9),
        completed_at=at(13),
        planned_distance_m=40000,
    )

    def shipment(name, start=None, end=None, **extra):
        return ShipmentFactory(
            organization=org,
            carrier=carrier,
            hub=hub,
            reference=f"{name}-{org.slug}",
            barcode=f"BC-{name}-{org.slug}",
            promised_window_start=start,
            promised_window_end=end,
            **extra,
        )

    s = {
        "A": shipment("A", at(9), at(10), service_type="same_day"),
        "F": shipment("F"),
        "B": shipment("B", at(10), at(11)),
        "C": shipment("C", at(11), at(12)),
        "D": shipment("D", at(10), at(12)),
        "E": shipment("E", at(12), at(13)),
        "G": shipment("G", at(14), at(16)),
        "H": shipment("H", at(13), at(15)),
    }
    stops = {
        "S1": stop(
            route, 1, [s["A"], s["F"]], arrive=at(9, 55), depart=at(10), planned_arrival=at(10)
        ),
        "S2": stop(route, 2, [s["B"]], arrive=at(10, 58), depart=at(11, 1)),
        "S3": stop(route, 3, [s["C"]], arrive=at(10, 20), depart=at(10, 25)),
        "S4": stop(route, 4, [s["D"]], arrive=at(12), depart=at(12, 30)),
        "S5": stop(
            route,
            5,
            [s["E"]],
            arrive=at(12, 40),
            depart=at(12, 45),
            status="failed",
            failure_reason="not_home",
        ),
    }
    # The reattempt of E on the next day, on another route.
    next_route = RouteFactory(
        organization=org,
        carrier=carrier,
        hub=hub,
        driver=driver,
        date=NEXT_DAY,
        status="completed",
        started_at=at(9, day=NEXT_DAY),
        completed_at=at(11, day=NEXT_DAY),
    )
    stops["S6"] = stop(
        next_route, 1, [s["E"]], arrive=at(9, 50, NEXT_DAY), depart=at(10, day=NEXT_DAY)
    )

    # Scans: A in order; B only delivered; C out of order; D and F none; E's stop failure is
    # also scanned (must not count twice). G and H are carrier-feed shipments (no stop).
    scan(org, s["A"], "out_for_delivery", at(8))
    scan(org, s["A"], "delivered", at(10))
    scan(org, s["B"], "delivered", at(11, 1))
    scan(org, s["C"], "delivered", at(10, 25))
    scan(org, s["C"], "out_for_delivery", at(10, 30))
    scan(org, s["E"], "attempt_failed", at(12, 45), reason="not_home")
    scan(org, s["G"], "out_for_delivery", at(9))
    scan(org, s["G"], "attempt_failed", at(11), reason="refused")
    scan(org, s["H"], "out_for_delivery", at(8))
    scan(org, s["H"], "delivered", at(14))
    scan(org, s["H"], "delivered", at(14, 5), result="unchanged")  # a repeat: one delivery

    # Proofs (policy: photo and geofence required, no signature).
    pod(org, s["A"], at(10))
    pod(org, s["B"], at(11, 1), photo=False)
    pod(org, s["C"], at(10, 25), outside=True)
    pod(org, s["F"], at(10))
    pod(org, s["H"], at(14))

    for name, stars in (("A", 5), ("D", 2)):
        DeliveryRating(
            organization=org, shipment=s[name], carrier=carrier, stars=stars, delivered_at=at(12)
        ).save()

    # ETAs: S1 two before arrival (errors 5 and 2 min; the last window holds the arrival) and
    # one after (ignored); S4 one (error 20 min, window missed).
    for stop_row, computed, eta, early, late in (
        (stops["S1"], at(9), at(9, 50), at(9, 40), at(10)),
        (stops["S1"], at(9, 30), at(9, 57), at(9, 50), at(10, 5)),
        (stops["S1"], at(9, 56), at(10, 30), at(10, 20), at(10, 40)),
        (stops["S4"], at(11), at(11, 40), at(11, 30), at(11, 50)),
    ):
        EtaRevision(
            organization=org,
            stop=stop_row,
            computed_at=computed,
            eta=eta,
            earliest=early,
            latest=late,
            method="test",
        ).save()

    # GPS: a fix a minute 09:00–10:59 and 12:00–12:59; 11:00–11:59 only a flagged fix.
    pings(org, device, at(9), 120)
    pings(org, device, at(11, 30), 1, flags=1)
    pings(org, device, at(12), 60)

    Alert(
        organization=org,
        kind="stalled",
        severity="medium",
        subject_type="route",
        subject_id=str(route.pk),
        route=route,
        carrier=carrier,
        title="Stalled",
        started_at=at(11, 30),
    ).save()
    return World(
        organization=org,
        carrier=carrier,
        hub=hub,
        driver=driver,
        route=route,
        next_route=next_route,
        stops=stops,
        shipments=s,
    )


def location(lon: float, lat: float) -> Point:
    return Point(lon, lat, srid=4326)
