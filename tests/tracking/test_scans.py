"""Barcode scans: the status each type implies, idempotent replays, refused and late scans,
unknown barcodes, all-or-nothing validation, who may scan and see what. Real PostGIS."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import dangerously_all_organizations
from tests.factories import CarrierFactory, DriverFactory, HubFactory, ShipmentFactory
from tracking.models import CustodyEntry, Scan, ShipmentEvent, ShipmentStatus

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/scans"
LIST = "/api/v1/scans/"


def at(minutes: float) -> str:
    """A time `minutes` after a fixed point an hour ago (so never in the future)."""
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


T0 = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)


def scan(barcode: str, scan_type: str, minutes: float = 0, **extra) -> dict:
    return {"barcode": barcode, "scan_type": scan_type, "occurred_at": at(minutes), **extra}


def post(client, *scans, status=200):
    response = client.post(URL, {"scans": list(scans)}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def fresh(obj):
    with dangerously_all_organizations():
        return type(obj).dangerously_unscoped.get(pk=obj.pk)


def chain(shipment) -> list[CustodyEntry]:
    return list(
        CustodyEntry.dangerously_unscoped.filter(shipment_id=shipment.pk).order_by("sequence")
    )


def all_scans():
    return Scan.dangerously_unscoped.order_by("pk")


@pytest.fixture
def driver(tenant):
    return DriverFactory(organization=tenant.organization, carrier=tenant.carrier, name="Pablo")


@pytest.fixture
def phone(tenant, driver, device_for, device_client_for):
    device, token = device_for(tenant, driver=driver)
    client = device_client_for(token)
    client.device = device
    return client


@pytest.fixture
def hub(tenant):
    return HubFactory(organization=tenant.organization, code="lsr-1")


@pytest.fixture
def parcel(tenant, hub):
    return ShipmentFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        hub=hub,
        barcode="PKG-1",
        reference="ORD-1",
    )


# ---------------------------------------------------------------------------------------------
# What each scan type does
# ---------------------------------------------------------------------------------------------

S = ShipmentStatus


@pytest.mark.parametrize(
    ("scan_type", "start", "result", "end", "kind"),
    [
        ("picked_up", S.INFO_RECEIVED, "recorded", S.INFO_RECEIVED, "handoff"),
        ("arrived_at_hub", S.INFO_RECEIVED, "applied", S.AT_HUB, "scan"),
        ("loaded", S.AT_HUB, "recorded", S.AT_HUB, "handoff"),
        ("out_for_delivery", S.AT_HUB, "applied", S.OUT_FOR_DELIVERY, "scan"),
        ("delivered", S.OUT_FOR_DELIVERY, "applied", S.DELIVERED, "scan"),
        ("attempt_failed", S.OUT_FOR_DELIVERY, "applied", S.ATTEMPT_FAILED, "scan"),
        ("returned", S.AT_HUB, "applied", S.RETURNED, "scan"),
        ("exception", S.AT_HUB, "applied", S.EXCEPTION, "scan"),
    ],
)
def test_each_scan_type(scan_type, start, result, end, kind, tenant, phone, driver, parcel):
    parcel.status = start
    parcel.status_changed_at = T0 - dt.timedelta(minutes=1)
    parcel.save()
    extra = {"reason_code": "not_home"} if scan_type == "attempt_failed" else {}
    body = post(
        phone,
        scan("PKG-1", scan_type, 5, location={"lat": -29.91, "lon": -71.26}, hub="lsr-1", **extra),
    )
    [outcome] = body["results"]
    assert body["received"] == 1 and body["duplicates"] == 0
    assert outcome["result"] == result and outcome["duplicate"] is False
    assert outcome["shipment"] == {"id": parcel.pk, "reference": "ORD-1", "status": end}
    assert fresh(parcel).status == end
    stored = Scan.dangerously_unscoped.get(pk=outcome["id"])
    assert (stored.shipment_id, stored.result, stored.device_id) == (
        parcel.pk,
        result,
        phone.device.pk,
    )
    assert stored.hub.code == "lsr-1" and stored.location.y == pytest.approx(-29.91)
    # Exactly one custody entry, of kind scan (status changes) or handoff.
    [entry] = chain(parcel)
    assert entry.kind == kind
    assert entry.details["scan"] == stored.pk and entry.details["result"] == result
    assert entry.details["hub"] == "lsr-1"
    assert entry.location.x == pytest.approx(-71.26)
    assert entry.actor.startswith("device Test phone")
    assert entry.occurred_at == T0 + dt.timedelta(minutes=5)
    events = ShipmentEvent.dangerously_unscoped.filter(shipment=parcel)
    if result == "applied":
        [event] = events
        assert (event.from_status, event.to_status, event.source) == (start, end, "scan")
        if scan_type == "attempt_failed":
            assert event.note == "Recipient not home" and entry.details["reason_code"] == "not_home"
    else:
        assert not events.exists()
        assert entry.custodian == f"driver:{driver.pk}:Pablo"


def test_a_day_of_scans_moves_the_parcel_along(phone, parcel, driver):
    body = post(
        phone,
        scan("PKG-1", "picked_up", 0),
        scan("PKG-1", "arrived_at_hub", 10),
        scan("PKG-1", "loaded", 20),
        scan("PKG-1", "out_for_delivery", 21),
        scan("PKG-1", "attempt_failed", 30, reason_code="access_denied", note="gate closed"),
        scan("PKG-1", "out_for_delivery", 40),
        scan("PKG-1", "delivered", 45),
    )
    assert [r["result"] for r in body["results"]] == [
        "recorded",
        "applied",
        "recorded",
        "applied",
        "applied",
        "applied",
        "applied",
    ]
    assert [r["shipment"]["status"] for r in body["results"]][-1] == "delivered"
    entries = chain(parcel)
    assert [e.kind for e in entries] == [
        "handoff",
        "scan",
        "handoff",
        "scan",
        "scan",
        "scan",
        "scan",
    ]
    assert entries[1].custodian == "hub:lsr-1"
    assert entries[-1].custodian == "recipient:Ana Pérez"
    assert "gate closed" in entries[4].details["note"]


def test_a_loading_scan_by_the_hub_hands_over_to_the_route_crew(
    tenant, api_client_for, parcel, driver
):
    from tests.factories import RouteFactory, StopFactory
    from tracking.models import StopShipment

    route = RouteFactory(organization=tenant.organization, carrier=tenant.carrier, driver=driver)
    stop = StopFactory(organization=tenant.organization, route=route, sequence=1)
    StopShipment(organization=tenant.organization, stop=stop, shipment=parcel).save()
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    [outcome] = post(dispatcher, scan("PKG-1", "loaded"))["results"]
    assert outcome["result"] == "recorded"
    assert outcome["detail"] == f"Handed over to driver:{driver.pk}:Pablo."
    assert chain(parcel)[0].custodian == f"driver:{driver.pk}:Pablo"


def test_a_reference_works_instead_of_a_barcode(phone, parcel):
    [outcome] = post(
        phone, {"reference": "ORD-1", "scan_type": "arrived_at_hub", "occurred_at": at(1)}
    )["results"]
    assert outcome["result"] == "applied" and outcome["barcode"] == "ORD-1"
    assert fresh(parcel).status == S.AT_HUB


# ---------------------------------------------------------------------------------------------
# Idempotency
# ---------------------------------------------------------------------------------------------


def test_a_replay_returns_the_original_outcome_and_changes_nothing(phone, parcel):
    batch = [
        scan("PKG-1", "arrived_at_hub", 1, event_id="0b7c-1"),
        scan("PKG-1", "out_for_delivery", 2),  # no event id: caller + barcode + type + time
        scan("NOPE", "delivered", 3),
    ]
    first = post(phone, *batch)
    counts = (
        all_scans().count(),
        CustodyEntry.dangerously_unscoped.count(),
        ShipmentEvent.dangerously_unscoped.count(),
    )
    again = post(phone, *batch)
    assert again["duplicates"] == 3
    for a, b in zip(first["results"], again["results"], strict=True):
        assert b["duplicate"] is True
        assert (a["id"], a["result"], a["barcode"], a["detail"]) == (
            b["id"],
            b["result"],
            b["barcode"],
            b["detail"],
        )
    assert again["results"][1]["shipment"]["status"] == "out_for_delivery"
    assert counts == (
        all_scans().count(),
        CustodyEntry.dangerously_unscoped.count(),
        ShipmentEvent.dangerously_unscoped.count(),
    )
    # The same instant spelled differently is the same scan.
    spelled = scan("PKG-1", "out_for_delivery")
    spelled["occurred_at"] = (
        (T0 + dt.timedelta(minutes=2)).astimezone(dt.timezone(dt.timedelta(hours=-3))).isoformat()
    )
    assert post(phone, spelled)["results"][0]["duplicate"] is True
    assert all_scans().count() == counts[0]


def test_a_repeat_inside_one_batch_is_a_duplicate(phone, parcel):
    body = post(
        phone,
        scan("PKG-1", "arrived_at_hub", 1, event_id="e-1"),
        scan("PKG-1", "arrived_at_hub", 1, event_id="e-1"),
    )
    assert [r["duplicate"] for r in body["results"]] == [False, True]
    assert body["results"][0]["id"] == body["results"][1]["id"]
    assert all_scans().count() == 1 and len(chain(parcel)) == 1


def test_the_same_scan_twice_without_event_id_but_later_is_unchanged(phone, parcel):
    post(phone, scan("PKG-1", "arrived_at_hub", 1))
    [outcome] = post(phone, scan("PKG-1", "arrived_at_hub", 2))["results"]
    assert outcome["result"] == "unchanged" and outcome["duplicate"] is False
    assert [e.details["result"] for e in chain(parcel)] == ["applied", "unchanged"]
    assert ShipmentEvent.dangerously_unscoped.filter(shipment=parcel).count() == 1


# ---------------------------------------------------------------------------------------------
# Refused, late and unknown
# ---------------------------------------------------------------------------------------------


def test_an_illegal_scan_is_recorded_reported_and_does_not_undo_the_others(phone, parcel, tenant):
    other = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier, barcode="P2")
    body = post(
        phone,
        scan("PKG-1", "delivered", 1),  # info received → delivered: refused
        scan("P2", "arrived_at_hub", 2),
    )
    refused, applied = body["results"]
    assert refused["result"] == "illegal"
    assert "cannot become delivered" in refused["detail"]
    assert "Allowed from info_received" in refused["detail"]
    assert refused["shipment"]["status"] == "info_received"
    assert applied["result"] == "applied" and fresh(other).status == S.AT_HUB
    assert fresh(parcel).status == S.INFO_RECEIVED
    [entry] = chain(parcel)
    assert entry.kind == "scan"
    assert entry.details["result"] == "illegal" and entry.details["refused"] == "delivered"
    assert entry.details["status"] == "info_received"
    stored = Scan.dangerously_unscoped.get(pk=refused["id"])
    assert stored.result == "illegal" and stored.detail == refused["detail"]


def test_a_late_out_for_delivery_never_reopens_a_delivered_parcel(phone, parcel):
    post(phone, scan("PKG-1", "out_for_delivery", 1), scan("PKG-1", "delivered", 30))
    # The phone was offline: its "out for delivery" of a later round arrives after delivery.
    [late] = post(phone, scan("PKG-1", "out_for_delivery", 40))["results"]
    assert late["result"] == "illegal" and late["shipment"]["status"] == "delivered"
    assert fresh(parcel).status == S.DELIVERED
    # Handoffs after delivery are refused too.
    [loaded] = post(phone, scan("PKG-1", "loaded", 50))["results"]
    assert loaded["result"] == "illegal" and "cannot be loaded" in loaded["detail"]
    assert [e.details["result"] for e in chain(parcel)] == [
        "applied",
        "applied",
        "illegal",
        "illegal",
    ]


def test_a_scan_older_than_the_current_status_does_not_move_it_back(phone, parcel):
    post(phone, scan("PKG-1", "out_for_delivery", 10))
    post(phone, scan("PKG-1", "attempt_failed", 30, reason_code="not_home"))
    # Buffered on another phone: an "out for delivery" from before the failed attempt.
    [late] = post(phone, scan("PKG-1", "out_for_delivery", 20, event_id="buffered"))["results"]
    assert late["result"] == "recorded" and "Older than the current status" in late["detail"]
    assert fresh(parcel).status == S.ATTEMPT_FAILED
    assert chain(parcel)[-1].details["late"] is True
    # A newer one does move it (second round).
    [newer] = post(phone, scan("PKG-1", "out_for_delivery", 40))["results"]
    assert newer["result"] == "applied"


def test_an_unknown_barcode_is_stored_without_shipment_or_custody(phone, parcel):
    [outcome] = post(phone, scan("NO-SUCH", "delivered"))["results"]
    assert outcome["result"] == "unknown_barcode" and outcome["shipment"] is None
    stored = Scan.dangerously_unscoped.get(pk=outcome["id"])
    assert stored.shipment_id is None and stored.barcode == "NO-SUCH"
    assert not CustodyEntry.dangerously_unscoped.exists()


def test_a_phone_clock_in_the_future_does_not_date_the_status_ahead(phone, parcel):
    future = (timezone.now() + dt.timedelta(hours=5)).isoformat()
    body = post(phone, {"barcode": "PKG-1", "scan_type": "arrived_at_hub", "occurred_at": future})
    assert body["results"][0]["result"] == "applied"
    assert fresh(parcel).status_changed_at <= timezone.now()
    # so the next real scan is not "older than the current status"
    now = timezone.now().isoformat()
    [outcome] = post(
        phone, {"barcode": "PKG-1", "scan_type": "out_for_delivery", "occurred_at": now}
    )["results"]
    assert outcome["result"] == "applied"


# ---------------------------------------------------------------------------------------------
# Validation: all or nothing
# ---------------------------------------------------------------------------------------------


def test_a_malformed_batch_is_refused_whole(phone, parcel, other_tenant):
    foreign_hub = HubFactory(organization=other_tenant.organization, code="theirs")
    response = phone.post(
        URL,
        {
            "scans": [
                scan("PKG-1", "arrived_at_hub", 1),  # fine, but must not be stored
                scan("PKG-1", "attempt_failed", 2),  # no reason
                scan("PKG-1", "teleported", 3),
                {"scan_type": "delivered", "occurred_at": at(4)},  # no barcode
                scan("PKG-1", "arrived_at_hub", 5, hub="theirs"),
                scan("PKG-1", "arrived_at_hub", 6, hub=foreign_hub.pk),
                scan("PKG-1", "arrived_at_hub", 7, location={"lat": 95, "lon": 0}),
                {"barcode": "PKG-1", "scan_type": "delivered", "occurred_at": "yesterday"},
            ]
        },
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["detail"].startswith("Scan 1 is invalid (reason_code)")
    fields = body["fields"]["scans"]
    assert set(fields) == {"1", "2", "3", "4", "5", "6", "7"}
    assert "reason_code" in fields["1"] and "scan_type" in fields["2"]
    assert "barcode" in fields["3"] and "hub" in fields["4"] and "hub" in fields["5"]
    assert "location" in fields["6"] and "occurred_at" in fields["7"]
    assert not all_scans().exists() and fresh(parcel).status == S.INFO_RECEIVED
    assert not CustodyEntry.dangerously_unscoped.exists()


@pytest.mark.parametrize("body", [{}, {"scans": []}, {"scans": "PKG-1"}, [], "x"])
def test_an_empty_or_shapeless_body_is_a_400(phone, body):
    response = phone.post(URL, body, format="json")
    assert response.status_code == 400 and response.json()["error"] == "validation_error"
    assert "scans" in response.json()["fields"]


def test_a_bare_array_is_accepted(phone, parcel):
    response = phone.post(URL, [scan("PKG-1", "arrived_at_hub")], format="json")
    assert response.status_code == 200 and response.json()["results"][0]["result"] == "applied"


@override_settings(SCAN_BATCH_MAX=2)
def test_a_batch_over_the_limit_is_refused(phone, parcel):
    response = phone.post(
        URL, {"scans": [scan("PKG-1", "picked_up", i) for i in range(3)]}, format="json"
    )
    assert response.status_code == 400
    assert "At most 2 scans" in response.json()["fields"]["scans"][0]
    assert not all_scans().exists()


def test_hub_by_id_or_code(phone, parcel, hub):
    body = post(
        phone,
        scan("PKG-1", "picked_up", 1, hub=hub.pk),
        scan("PKG-1", "arrived_at_hub", 2, hub="lsr-1"),
    )
    ids = [r["id"] for r in body["results"]]
    assert [s.hub_id for s in all_scans().filter(pk__in=ids)] == [hub.pk, hub.pk]


# ---------------------------------------------------------------------------------------------
# Who may scan, and whose shipments they see
# ---------------------------------------------------------------------------------------------


def test_devices_api_keys_and_people_can_scan(tenant, phone, parcel, api_client_for, api_key_for):
    key = api_client_for(key=api_key_for(tenant, scopes=[Scope.TRACKING_WRITE]))
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    carrier_user = api_client_for(tenant.user(Role.CARRIER_USER))
    results = [
        post(client, scan("PKG-1", "arrived_at_hub", 1))["results"][0]
        for client in (phone, key, dispatcher, carrier_user)
    ]
    # Different callers, same barcode/type/time: separate scans (not replays of each other).
    assert [r["result"] for r in results] == ["applied", "unchanged", "unchanged", "unchanged"]
    assert len({r["id"] for r in results}) == 4
    stored = list(all_scans())
    assert stored[0].device_id == phone.device.pk and stored[1].api_key is not None
    actors = [e.actor for e in chain(parcel)]
    assert actors[1].startswith("API key test") and actors[2] == "dispatcher@acme.example.com"


def test_scanning_needs_tracking_write(tenant, parcel, api_client_for, api_key_for):
    from rest_framework.test import APIClient

    read_key = api_client_for(key=api_key_for(tenant, scopes=[Scope.TRACKING_READ]))
    shipments_key = api_client_for(key=api_key_for(tenant, scopes=[Scope.SHIPMENTS_WRITE]))
    for client in (
        read_key,
        shipments_key,
        api_client_for(tenant.user(Role.OPS_MANAGER)),
        api_client_for(tenant.user(Role.DRIVER)),
    ):
        assert (
            client.post(URL, {"scans": [scan("PKG-1", "delivered")]}, format="json").status_code
            == 403
        )
    anonymous = APIClient().post(URL, {"scans": [scan("PKG-1", "delivered")]}, format="json")
    assert anonymous.status_code == 401
    bad_token = APIClient()
    bad_token.credentials(HTTP_AUTHORIZATION="Device ctd_nope_nope")
    assert bad_token.post(URL, {"scans": []}, format="json").status_code == 401
    assert not all_scans().exists()


def test_a_carrier_only_scans_its_own_shipments(tenant, phone, parcel, api_client_for, api_key_for):
    rival = CarrierFactory(organization=tenant.organization, code="rival")
    theirs = ShipmentFactory(organization=tenant.organization, carrier=rival, barcode="RIVAL-1")
    unassigned = ShipmentFactory(organization=tenant.organization, carrier=None, barcode="FREE-1")
    bound_key = api_client_for(
        key=api_key_for(tenant, scopes=[Scope.TRACKING_WRITE], carrier=tenant.carrier)
    )
    carrier_user = api_client_for(tenant.user(Role.CARRIER_USER))
    for client in (phone, bound_key, carrier_user):
        body = post(client, scan("RIVAL-1", "arrived_at_hub"), scan("FREE-1", "arrived_at_hub"))
        for outcome in body["results"]:
            assert outcome["result"] == "unknown_barcode" and outcome["shipment"] is None
            assert outcome["detail"] == "No shipment with this barcode."
    assert fresh(theirs).status == S.INFO_RECEIVED and fresh(unassigned).status == S.INFO_RECEIVED
    assert not all_scans().exclude(shipment=None).exists()
    # The organization's dispatcher sees every carrier's shipments.
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    assert post(dispatcher, scan("RIVAL-1", "arrived_at_hub"))["results"][0]["result"] == "applied"


def test_a_replayed_event_id_does_not_reveal_another_carriers_shipment(
    tenant, phone, api_client_for
):
    rival = CarrierFactory(organization=tenant.organization, code="rival")
    ShipmentFactory(organization=tenant.organization, carrier=rival, barcode="RIVAL-1")
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    post(dispatcher, scan("RIVAL-1", "arrived_at_hub", event_id="shared-id"))
    [outcome] = post(phone, scan("PKG-9", "delivered", event_id="shared-id"))["results"]
    assert outcome["duplicate"] is True
    assert outcome["result"] == "unknown_barcode" and outcome["shipment"] is None


def test_scan_reads_are_narrowed_to_the_carrier(tenant, phone, parcel, api_client_for):
    rival = CarrierFactory(organization=tenant.organization, code="rival")
    ShipmentFactory(organization=tenant.organization, carrier=rival, barcode="RIVAL-1")
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    rival_scan = post(dispatcher, scan("RIVAL-1", "arrived_at_hub"))["results"][0]["id"]
    ours = post(phone, scan("PKG-1", "arrived_at_hub"), scan("LOST-1", "arrived_at_hub"))
    our_ids = {r["id"] for r in ours["results"]}
    carrier_user = api_client_for(tenant.user(Role.CARRIER_USER))
    listed = carrier_user.get(LIST).json()
    assert {r["id"] for r in listed["results"]} == our_ids  # incl. its own unknown barcode
    assert carrier_user.get(f"{LIST}{rival_scan}/").status_code == 404
    assert dispatcher.get(LIST).json()["count"] == 3
    assert api_client_for(tenant.user(Role.OPS_MANAGER)).get(LIST).status_code == 200
    assert api_client_for(tenant.user(Role.DRIVER)).get(LIST).status_code == 403


def test_scan_list_filters_and_detail(tenant, phone, parcel, api_client_for):
    post(
        phone,
        scan("PKG-1", "arrived_at_hub", 1),
        scan("PKG-1", "delivered", 2),  # illegal from at_hub
        scan("LOST-1", "arrived_at_hub", 3),
    )
    client = api_client_for(tenant.user(Role.DISPATCHER))

    def barcodes(**params):
        return [r["barcode"] for r in client.get(LIST, params).json()["results"]]

    assert barcodes() == ["LOST-1", "PKG-1", "PKG-1"]  # newest first
    assert barcodes(shipment=parcel.pk) == ["PKG-1", "PKG-1"]
    assert barcodes(barcode="LOST-1") == ["LOST-1"]
    assert barcodes(result="illegal") == ["PKG-1"]
    assert barcodes(result=["illegal", "unknown_barcode"]) == ["LOST-1", "PKG-1"]
    assert barcodes(scan_type="delivered") == ["PKG-1"]
    assert barcodes(occurred_after=at(2), occurred_before=at(3)) == ["PKG-1"]
    assert barcodes(ordering="occurred_at") == ["PKG-1", "PKG-1", "LOST-1"]
    row = client.get(LIST, {"result": "illegal"}).json()["results"][0]
    detail = client.get(f"{LIST}{row['id']}/").json()
    assert detail == row
    assert detail["shipment"] == parcel.pk and detail["shipment_reference"] == "ORD-1"
    assert detail["scan_type"] == "delivered" and detail["device"] == phone.device.pk
    assert detail["result"] == "illegal" and detail["detail"]


def test_scan_list_queries_do_not_grow(
    tenant, phone, parcel, api_client_for, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api_client_for(tenant.user(Role.CARRIER_USER))
    post(phone, *[scan("PKG-1", "picked_up", i) for i in range(3)])
    with CaptureQueriesContext(connection) as captured:
        client.get(LIST)
    few = len(captured.captured_queries)  # now: the next request resets the log
    post(phone, *[scan("PKG-1", "picked_up", 10 + i) for i in range(20)])
    with django_assert_max_num_queries(few):
        assert client.get(LIST).json()["count"] == 23


# ---------------------------------------------------------------------------------------------
# Another organization
# ---------------------------------------------------------------------------------------------


def test_another_organization_cannot_scan_our_shipments(
    tenant,
    other_tenant,
    phone,
    parcel,
    device_for,
    device_client_for,
    api_client_for,
    api_key_for,
):
    [ours] = post(phone, scan("PKG-1", "arrived_at_hub", 1, event_id="evt-ours"))["results"]
    _device, their_token = device_for(other_tenant)
    attackers = [
        device_client_for(their_token),
        api_client_for(key=api_key_for(other_tenant)),
        api_client_for(other_tenant.user(Role.OWNER)),
    ]
    # Our event id is not theirs: idempotency keys are per organization, no replay of ours.
    [replay] = post(attackers[0], scan("PKG-1", "out_for_delivery", 30, event_id="evt-ours"))[
        "results"
    ]
    assert replay["duplicate"] is False and replay["result"] == "unknown_barcode"
    for n, client in enumerate(attackers):
        body = post(
            client,
            scan("PKG-1", "delivered", 10 + n),
            {"reference": "ORD-1", "scan_type": "exception", "occurred_at": at(20 + n)},
        )
        for outcome in body["results"]:
            assert outcome["result"] == "unknown_barcode", outcome
            assert outcome["shipment"] is None and outcome["duplicate"] is False
            assert outcome["id"] != ours["id"]
        # And our hub is not theirs to name.
        response = client.post(
            URL, {"scans": [scan("X", "arrived_at_hub", hub="lsr-1")]}, format="json"
        )
        assert response.status_code == 400 and "hub" in response.json()["fields"]["scans"]["0"]
    assert fresh(parcel).status == S.AT_HUB
    assert len(chain(parcel)) == 1
    with dangerously_all_organizations():
        theirs = Scan.dangerously_unscoped.filter(organization=other_tenant.organization)
        assert theirs.count() == 7 and not theirs.exclude(shipment=None).exists()


def test_another_organization_cannot_read_our_scans(
    tenant, other_tenant, phone, parcel, api_client_for, api_key_for
):
    [ours] = post(phone, scan("PKG-1", "arrived_at_hub"))["results"]
    for client in (
        api_client_for(other_tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(other_tenant)),
    ):
        assert client.get(f"{LIST}{ours['id']}/").status_code == 404
        listed = client.get(LIST).json()
        assert ours["id"] not in {r["id"] for r in listed["results"]}
        assert client.get(LIST, {"shipment": parcel.pk}).json()["count"] == 0
    ok = api_client_for(tenant.user(Role.OWNER)).get(f"{LIST}{ours['id']}/")
    assert ok.status_code == 200


def test_the_hub_that_scans_an_arrival_becomes_the_custodian(tenant, phone, parcel):
    other_hub = HubFactory(organization=tenant.organization, code="cqb-2")
    post(phone, scan("PKG-1", "arrived_at_hub", 1, hub="cqb-2"))
    assert other_hub.code != parcel.hub.code
    assert chain(parcel)[-1].custodian == "hub:cqb-2"
