"""What the phone does, through the platform's public endpoints with its device token (no
second path): start the route, load-out scans, arrive, proof of delivery with where it was
left, a failed attempt with a reason and a photo, a skip with a reason, a problem report.
Replays (the offline queue re-sending) change nothing; late events keep their own times."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from carriers.models import Driver
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from exceptions.models import Alert
from tests.driver_app.conftest import phone, sign_in
from tests.factories import RouteFactory, ShipmentFactory
from tests.tracking.test_proof_of_delivery import jpeg, png, upload
from tracking.models import (
    CustodyEntry,
    ProofOfDelivery,
    Route,
    Scan,
    Shipment,
    Stop,
    StopShipment,
)
from tracking.services.custody import custody_verify

pytestmark = pytest.mark.django_db

HOME = (-71.2600, -29.9200)


@pytest.fixture
def day(tenant):
    """The driver's route today: three stops, one parcel each (loaded at the hub later)."""
    org = tenant.organization
    driver = Driver.dangerously_unscoped.get(user=tenant.user(Role.DRIVER))
    route = RouteFactory(organization=org, carrier=tenant.carrier, driver=driver, code="R-1")
    stops = []
    for sequence in (1, 2, 3):
        stop = Stop.objects.create(
            organization=org,
            route=route,
            sequence=sequence,
            location=Point(HOME[0] + sequence / 1000, HOME[1], srid=4326),
            address=f"Calle {sequence}",
        )
        shipment = ShipmentFactory(
            organization=org,
            carrier=tenant.carrier,
            status="at_hub",
            barcode=f"PKG-{sequence}",
            location=stop.location,
        )
        StopShipment.objects.create(organization=org, stop=stop, shipment=shipment)
        stops.append(stop)
    token = sign_in(tenant).json()["token"]
    return route, stops, phone(token)


T0 = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)


def _at(minutes: float) -> str:
    """A time `minutes` after a fixed point an hour before the tests started."""
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def _fresh(model, pk):
    return model.dangerously_unscoped.get(pk=pk)


def _parcel(stop) -> Shipment:
    return Shipment.dangerously_unscoped.get(stops=stop)


def test_a_day_worked_from_the_phone(tenant, day):
    route, stops, client = day
    # Load-out at the hub: one scan per parcel, replayed once (the queue re-sends).
    scans = [
        {
            "event_id": f"load-{n}",
            "barcode": f"PKG-{n}",
            "scan_type": "loaded",
            "occurred_at": _at(n),
        }
        for n in (1, 2, 3)
    ]
    first = client.post("/api/v1/ingest/scans", {"scans": scans}, format="json")
    assert first.status_code == 200, first.content
    assert {r["result"] for r in first.json()["results"]} == {"recorded"}
    again = client.post("/api/v1/ingest/scans", {"scans": scans}, format="json")
    assert [r["duplicate"] for r in again.json()["results"]] == [True, True, True]
    assert Scan.dangerously_unscoped.count() == 3

    started = client.post(f"/api/v1/routes/{route.pk}/start/", {"occurred_at": _at(5)})
    assert started.status_code == 200 and started.json()["status"] == "in_progress"
    assert (
        client.post(f"/api/v1/routes/{route.pk}/start/", {"occurred_at": _at(5)}).status_code == 200
    )

    # Stop 1: arrive, then a proof of delivery left at the front door (completes the stop).
    one = stops[0]
    for _ in range(2):
        arrived = client.post(f"/api/v1/stops/{one.pk}/arrive/", {"occurred_at": _at(20)})
        assert arrived.status_code == 200 and arrived.json()["status"] == "arrived"
    pod = {
        "shipment": _parcel(one).pk,
        "stop": one.pk,
        "idempotency_key": "ev-1:pod",
        "recipient_name": "Ana",
        "left_at": "front_door",
        "lat": HOME[1],
        "lon": HOME[0] + 0.001,
        "captured_at": _at(22),
        "photos": [upload("door.jpg", jpeg())],
        "signature": upload("sig.png", png(), "image/png"),
    }
    response = client.post("/api/v1/ingest/pod", pod, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["left_at"] == "front_door"
    assert response.json()["outcome"] == "delivered"
    replay = dict(
        pod, photos=[upload("door.jpg", jpeg())], signature=upload("s.png", png(), "image/png")
    )
    assert client.post("/api/v1/ingest/pod", replay, format="multipart").status_code == 200
    assert _fresh(Stop, one.pk).status == "completed"
    assert _parcel(one).status == "delivered"

    # Stop 2: nobody home: the photo of the closed door is the evidence of the attempt.
    two = stops[1]
    attempt = {
        "shipment": _parcel(two).pk,
        "stop": two.pk,
        "idempotency_key": "ev-2:attempt",
        "outcome": "attempt_failed",
        "reason": "not_home",
        "lat": HOME[1],
        "lon": HOME[0] + 0.002,
        "captured_at": _at(35),
        "photos": [upload("closed.jpg", jpeg())],
    }
    response = client.post("/api/v1/ingest/pod", attempt, format="multipart")
    assert response.status_code == 201, response.content
    failed = _fresh(Stop, two.pk)
    assert (failed.status, failed.failure_reason) == ("failed", "not_home")
    assert _parcel(two).status == "attempt_failed"
    evidence = ProofOfDelivery.dangerously_unscoped.get(idempotency_key="ev-2:attempt")
    assert (evidence.outcome, evidence.failure_reason, evidence.pin_verified) == (
        "attempt_failed",
        "not_home",
        None,
    )

    # Stop 3: skipped from the road with a reason.
    three = stops[2]
    skipped = client.post(
        f"/api/v1/stops/{three.pk}/skip/", {"reason": "out_of_time", "note": "traffic"}
    )
    assert skipped.status_code == 200, skipped.content
    assert _fresh(Stop, three.pk).failure_reason == "out_of_time"

    # A problem on the road raises the exceptions engine's incident alert.
    reported = client.post(
        "/api/v1/incidents/", {"route": route.pk, "kind": "vehicle", "note": "warning light"}
    )
    assert reported.status_code == 201, reported.content
    alert = Alert.dangerously_unscoped.get(kind="incident")
    assert (alert.severity, str(alert.subject_id)) == ("high", str(route.pk))

    # Every chain of custody holds, and the attempt left its evidence in the chain.
    with organization_scope(tenant.organization):
        for stop in stops:
            assert custody_verify(_parcel(stop)).valid
    kinds = list(
        CustodyEntry.dangerously_unscoped.filter(shipment=_parcel(two))
        .order_by("sequence")
        .values_list("kind", flat=True)
    )
    assert kinds[-1] == "attempt"
    assert Route.dangerously_unscoped.get(pk=route.pk).status == "in_progress"


def test_late_events_keep_their_own_times(day):
    """Sent after the phone came back online: arrival and departure are when they happened."""
    _route, stops, client = day
    stop = stops[0]
    client.post(f"/api/v1/stops/{stop.pk}/arrive/", {"occurred_at": _at(10)})
    client.post(f"/api/v1/stops/{stop.pk}/complete/", {"occurred_at": _at(14)})
    done = _fresh(Stop, stop.pk)
    assert done.actual_arrival == dt.datetime.fromisoformat(_at(10))
    assert done.actual_departure - done.actual_arrival == dt.timedelta(minutes=4)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"outcome": "attempt_failed"}, "reason"),
        ({"outcome": "attempt_failed", "reason": "lunch"}, "reason"),
        ({"reason": "not_home"}, "reason"),
        ({"left_at": "roof"}, "left_at"),
        ({"outcome": "attempt_failed", "reason": "not_home", "left_at": "front_door"}, "left_at"),
    ],
)
def test_bad_proofs_are_refused_and_store_nothing(day, body, field):
    _route, stops, client = day
    stop = stops[0]
    form = {
        "shipment": _parcel(stop).pk,
        "stop": stop.pk,
        "idempotency_key": "bad",
        "photos": [upload("p.jpg", jpeg())],
        **body,
    }
    response = client.post("/api/v1/ingest/pod", form, format="multipart")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not ProofOfDelivery.dangerously_unscoped.exists()
    assert _fresh(Stop, stop.pk).status == "pending"


def test_an_unknown_skip_reason_is_refused(day):
    _route, stops, client = day
    response = client.post(f"/api/v1/stops/{stops[0].pk}/skip/", {"reason": "bored"})
    assert response.status_code == 400 and "reason" in response.json()["fields"]
    assert _fresh(Stop, stops[0].pk).status == "pending"


def test_the_phone_cannot_plan_edit_or_cancel_routes(tenant, day):
    route, stops, client = day
    assert client.post(f"/api/v1/routes/{route.pk}/cancel/", {}).status_code == 403
    assert client.patch(f"/api/v1/routes/{route.pk}/", {"code": "X"}).status_code == 403
    assert client.delete(f"/api/v1/stops/{stops[0].pk}/").status_code == 403
    assert (
        client.post(f"/api/v1/stops/{stops[0].pk}/reassign/", {"route": route.pk}).status_code
        == 403
    )
    # Endpoints that take no device token do not recognise it at all.
    assert client.get("/api/v1/shipments/").status_code == 401
