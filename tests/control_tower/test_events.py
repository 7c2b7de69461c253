"""The event catalog and `emit`: what each service emits (type, payload, exactly one outbox row
per durable event, none after a rollback, none for pings), live delivery after commit, and the
JSON safety of payloads. Real PostgreSQL and Redis; the relay is in test_outbox_relay.py."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.utils import timezone
from PIL import Image

from control_tower.events import (
    EventType,
    catalog,
    emit,
    make_event,
    register_event_type,
    register_live,
)
from control_tower.events.models import OutboxEvent
from control_tower.events.registry import unregister_live
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import (
    HubFactory,
    RouteFactory,
    ShipmentFactory,
    VehicleFactory,
    running_route_with_phone,
    stop_with_shipments,
)
from tracking.eta.recompute import route_eta_update
from tracking.ingest.fixes import Fix
from tracking.ingest.pings import pings_ingest
from tracking.ingest.vehicles import clear_route_cache
from tracking.models import Shipment, Stop
from tracking.services import shipment_transition
from tracking.services.routes import route_cancel
from tracking.services.stops import stop_arrive, stop_complete

pytestmark = pytest.mark.django_db


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def live_seen():
    """Every event handed to live handlers, in delivery order."""
    seen = []

    def handler(event):
        seen.append(event)

    register_live("*", handler)
    yield seen
    unregister_live(handler)


def rows(event_type: str | None = None):
    queryset = OutboxEvent.dangerously_unscoped.order_by("id")
    if event_type:
        queryset = queryset.filter(type=event_type)
    return list(queryset)


def types(events) -> list[str]:
    return [e.type for e in events]


def planned_route(tenant, *, stops=2):
    route = RouteFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        hub=HubFactory(organization=tenant.organization),
        status="planned",
        date=timezone.localdate(),
    )
    for sequence in range(1, stops + 1):
        stop_with_shipments(route=route, sequence=sequence)
    return route


# ---------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------


def test_a_shipment_transition_emits_its_status_and_custody_once(
    tenant, live_seen, django_capture_on_commit_callbacks
):
    shipment = ShipmentFactory(
        organization=tenant.organization, carrier=tenant.carrier, status="at_hub"
    )
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    with organization_scope(tenant.organization), django_capture_on_commit_callbacks(execute=True):
        shipment_transition(shipment=shipment, to_status="out_for_delivery", actor=None, at=at)
    status_rows = rows("shipment.status_changed")
    assert len(status_rows) == 1 and len(rows("custody.appended")) == 1
    row = status_rows[0]
    assert row.version == 1
    assert row.organization_id == tenant.organization.pk
    assert row.carrier_id == tenant.carrier.pk
    assert (row.aggregate_type, row.aggregate_id) == ("shipment", str(shipment.pk))
    assert row.payload == {
        "id": shipment.pk,
        "reference": shipment.reference,
        "status": "out_for_delivery",
        "from": "at_hub",
        "at": "2026-03-01T09:30:00+00:00",
    }
    custody = rows("custody.appended")[0].payload
    assert custody["shipment"] == shipment.pk and custody["sequence"] == 1
    assert len(custody["hash"]) == 64
    # Live handlers got the same events (same ids) after commit.
    assert types(live_seen) == ["custody.appended", "shipment.status_changed"]
    assert live_seen[1].id == row.event_id


def test_a_rollback_leaves_no_event_and_no_live_delivery(
    tenant, live_seen, django_capture_on_commit_callbacks
):
    shipment = ShipmentFactory(organization=tenant.organization, status="at_hub")
    with (
        organization_scope(tenant.organization),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        shipment_transition(shipment=shipment, to_status="out_for_delivery", actor=None)
        assert len(rows()) == 2  # written in the transaction ...
        raise RuntimeError("the caller gives up")
    assert rows() == []  # ... and gone with it
    assert callbacks == [] and live_seen == []
    assert Shipment.dangerously_unscoped.get(pk=shipment.pk).status == "at_hub"


def test_a_rolled_back_savepoint_drops_only_its_own_events(tenant):
    shipment = ShipmentFactory(organization=tenant.organization, status="at_hub")
    other = ShipmentFactory(organization=tenant.organization, status="at_hub")
    with organization_scope(tenant.organization), transaction.atomic():
        shipment_transition(shipment=shipment, to_status="out_for_delivery", actor=None)
        with pytest.raises(RuntimeError), transaction.atomic():
            shipment_transition(shipment=other, to_status="out_for_delivery", actor=None)
            raise RuntimeError
    assert [r.aggregate_id for r in rows("shipment.status_changed")] == [str(shipment.pk)]


def test_a_stop_arrival_on_a_planned_route_merges_route_changed_into_one_row(
    tenant, live_seen, django_capture_on_commit_callbacks
):
    route = planned_route(tenant)
    stop = Stop.dangerously_unscoped.get(route=route, sequence=1)
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization), django_capture_on_commit_callbacks(execute=True):
        stop_arrive(stop=stop, actor=actor)
    stop_rows = rows("stop.status_changed")
    assert len(stop_rows) == 1
    assert stop_rows[0].payload["status"] == "arrived"
    assert stop_rows[0].payload["actual_arrival"].endswith("+00:00")
    assert (stop_rows[0].aggregate_type, stop_rows[0].aggregate_id) == ("route", str(route.pk))
    # The route started (status) and its stop moved (stops): one event, the latest state.
    route_rows = rows("route.changed")
    assert len(route_rows) == 1
    payload = route_rows[0].payload
    assert payload["status"] == "in_progress" and payload["from"] == "planned"
    assert payload["reasons"] == ["status", "stops"]
    assert types(live_seen).count("route.changed") == 1
    live_route = next(e for e in live_seen if e.type == "route.changed")
    assert live_route.payload == payload
    # Every shipment on the route's open stops went out for delivery.
    assert len(rows("shipment.status_changed")) == 2


def test_completing_then_cancelling_emits_each_route_change(tenant):
    route = planned_route(tenant, stops=1)
    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        stop_complete(stop=route.stops.get(), actor=actor)
        second = planned_route(tenant, stops=1)
        route_cancel(route=second, actor=actor)
    by_route = {r.aggregate_id: r.payload for r in rows("route.changed")}
    assert by_route[str(route.pk)]["reasons"] == ["status", "stops"]
    assert by_route[str(second.pk)] == {
        **by_route[str(second.pk)],
        "status": "cancelled",
        "from": "planned",
        "reasons": ["status"],
    }
    assert len(rows("route.changed")) == 2


def test_an_eta_recompute_emits_one_event_per_material_move(tenant, live_seen):
    route, _device, _token = running_route_with_phone(tenant)
    now = datetime.now(UTC)
    with organization_scope(tenant.organization):
        assert route_eta_update(route, now=now) == 3
        assert route_eta_update(route, now=now + timedelta(seconds=5)) == 0
    eta_rows = rows("stop.eta_changed")
    assert len(eta_rows) == 3
    stop_ids = set(Stop.dangerously_unscoped.filter(route=route).values_list("pk", flat=True))
    assert {r.payload["id"] for r in eta_rows} == stop_ids
    for row in eta_rows:
        assert row.aggregate_id == str(route.pk)
        eta = datetime.fromisoformat(row.payload["eta"])
        assert eta.utcoffset() == timedelta(0)
        assert row.payload["earliest"] <= row.payload["eta"] <= row.payload["latest"]


def test_a_ping_is_live_only_and_adds_no_outbox_row(
    tenant, live_seen, django_assert_num_queries, django_capture_on_commit_callbacks
):
    route, device, _token = running_route_with_phone(tenant)
    route.vehicle = VehicleFactory(organization=tenant.organization, carrier=tenant.carrier)
    route.save(update_fields=["vehicle"])
    clear_route_cache()
    now = timezone.now()

    def ping(seconds, **extra):
        fix = Fix(fix_time=now - timedelta(seconds=seconds), lat=50.1, lon=14.4, **extra)
        pings_ingest(device=device, fixes=[fix], source="native", received_at=now)

    with organization_scope(tenant.organization):
        with django_capture_on_commit_callbacks(execute=True):
            ping(30, speed_mps=10.0, heading_deg=90.0)  # looks the vehicle's route up once
        # Then: the position read and the one write, nothing for the event.
        with django_capture_on_commit_callbacks(execute=True), django_assert_num_queries(2):
            ping(20, speed_mps=12.0)
    assert rows() == []
    moved = [e for e in live_seen if e.type == "vehicle.moved"]
    assert len(moved) == 2
    first = moved[0]
    assert first.aggregate_type == "vehicle" and first.payload["route"] == route.pk
    assert first.payload["speed_mps"] == 10.0 and first.payload["device"] == device.pk
    assert moved[1].payload["speed_mps"] == 12.0


def test_a_non_finite_reading_never_reaches_a_payload():
    event = catalog.vehicle_moved(
        organization_id=1,
        carrier_id=None,
        vehicle_id=2,
        route_id=None,
        device_id=3,
        lat=50.0,
        lon=float("nan"),
        fix_time=datetime(2026, 1, 1, tzinfo=UTC),
        speed_mps=1e308 * 10,
        heading_deg=float("-inf"),
        battery_pct=80,
    )
    assert event.payload["speed_mps"] is None and event.payload["lon"] is None
    assert event.payload["heading_deg"] is None
    assert event.payload["fix_time"] == "2026-01-01T00:00:00+00:00"
    json.dumps(event.as_dict(), allow_nan=False)


def test_scans_emit_one_event_per_stored_scan(tenant, device_for, device_client_for):
    shipment = ShipmentFactory(
        organization=tenant.organization, carrier=tenant.carrier, barcode="PKG-9", status="at_hub"
    )
    _device, token = device_for(tenant)
    client = device_client_for(token)
    at = timezone.now().isoformat()
    response = client.post(
        "/api/v1/ingest/scans",
        {
            "scans": [
                {"barcode": "PKG-9", "scan_type": "out_for_delivery", "occurred_at": at},
                {"barcode": "NOPE-1", "scan_type": "out_for_delivery", "occurred_at": at},
            ]
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    scans = rows("scan.recorded")
    assert len(scans) == 2
    known, unknown = scans
    assert known.aggregate_id == str(shipment.pk)
    assert known.payload["shipment"] == shipment.pk
    assert known.payload["result"] == "applied" and known.payload["barcode"] == "PKG-9"
    assert unknown.aggregate_id == "barcode:NOPE-1" and unknown.payload["shipment"] is None
    assert len(rows("shipment.status_changed")) == 1
    # Replaying the batch stores nothing, so emits nothing.
    client.post(
        "/api/v1/ingest/scans",
        {"scans": [{"barcode": "PKG-9", "scan_type": "out_for_delivery", "occurred_at": at}]},
        format="json",
    )
    assert len(rows("scan.recorded")) == 2


def test_a_proof_of_delivery_emits_pod_captured(
    tenant, device_for, device_client_for, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    shipment = ShipmentFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        status="out_for_delivery",
        location=Point(14.4, 50.1, srid=4326),
    )
    _device, token = device_for(tenant)
    signature = SimpleUploadedFile("sig.png", png_bytes(), content_type="image/png")
    response = device_client_for(token).post(
        "/api/v1/ingest/pod",
        {
            "shipment": shipment.pk,
            "idempotency_key": "pod-ev",
            "recipient_name": "Ana",
            "lat": 50.1,
            "lon": 14.4,
            "signature": signature,
        },
        format="multipart",
    )
    assert response.status_code in (200, 201), response.content
    pods = rows("pod.captured")
    assert len(pods) == 1
    assert pods[0].aggregate_id == str(shipment.pk)
    assert pods[0].payload["recipient_name"] == "Ana"
    assert pods[0].payload["location"] == [14.4, 50.1]
    assert len(rows("shipment.status_changed")) == 1


# ---------------------------------------------------------------------------------------------
# The catalog itself
# ---------------------------------------------------------------------------------------------


def test_payloads_are_json_safe():
    payload = catalog.json_safe(
        {
            "nan": float("nan"),
            "inf": -math.inf,
            "at": datetime(2026, 1, 1, 12, tzinfo=UTC),
            "nested": [1.5, {"x": math.inf}],
        }
    )
    assert payload == {
        "nan": None,
        "inf": None,
        "at": "2026-01-01T12:00:00+00:00",
        "nested": [1.5, {"x": None}],
    }
    with pytest.raises(TypeError):
        catalog.json_safe({"shipment": object()})


def test_every_catalog_type_is_named_once_and_reserves_the_alert_namespace(
    tenant, live_seen, django_capture_on_commit_callbacks
):
    assert {
        "shipment.status_changed",
        "stop.status_changed",
        "stop.eta_changed",
        "route.changed",
        "vehicle.moved",
        "scan.recorded",
        "pod.captured",
        "custody.appended",
    } <= set(catalog.EVENT_TYPES)
    assert catalog.EVENT_TYPES["vehicle.moved"].durable is False
    with pytest.raises(ValueError, match="already"):
        register_event_type(catalog.EventType("route.changed", 2, "route", True, "again"))
    # A later module adds its own type without touching this package.
    raised = register_event_type(
        EventType("alert.test_raised", 1, "route", durable=True, description="test"),
        replace=True,
    )
    try:
        event = make_event(
            raised.name,
            organization_id=tenant.organization.pk,
            carrier_id=None,
            aggregate_id=7,
            payload={"severity": "high", "score": float("nan")},
        )
        with django_capture_on_commit_callbacks(execute=True):
            emit(event)
        assert rows("alert.test_raised")[0].payload == {"severity": "high", "score": None}
        assert live_seen[-1].id == event.id
    finally:
        catalog.EVENT_TYPES.pop(raised.name)


def test_planning_creating_and_editing_routes_emit_route_changed(tenant):
    from tracking.services.routes import route_create, route_plan_create, route_update

    actor = actor_for_membership(tenant.members[Role.DISPATCHER])
    with organization_scope(tenant.organization):
        hub = HubFactory(organization=tenant.organization)
        today = timezone.localdate()
        spec = {"hub": hub, "carrier": tenant.carrier}
        created = route_create(actor=actor, data={"date": today, "code": "NEW-1", **spec})
        planned = route_plan_create(
            actor=actor,
            date=today,
            routes=[
                {"code": "PLAN-1", "stops": [], **spec},
                {"code": "PLAN-2", "stops": [], **spec},
            ],
        )
        route_update(route=created, actor=actor, data={"code": "NEW-1B"})
    by_route = {r.aggregate_id: r.payload for r in rows("route.changed")}
    assert len(rows("route.changed")) == 3  # one per route: the test is one transaction
    # Created then edited in one transaction: one event, the latest plan, both reasons.
    assert by_route[str(created.pk)]["reasons"] == ["planned", "edited"]
    assert by_route[str(created.pk)]["code"] == "NEW-1B"
    assert {by_route[str(r.pk)]["code"] for r in planned} == {"PLAN-1", "PLAN-2"}
    assert all(by_route[str(r.pk)]["reasons"] == ["planned"] for r in planned)
