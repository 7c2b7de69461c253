"""The inbound carrier webhook: carrier-bound credentials, the scan service's rules
(idempotent, out-of-order safe), unknown codes kept and flagged, then re-processed."""

from __future__ import annotations

import pytest

from carriers.feeds.models import InboundCarrierEvent
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import dangerously_all_organizations
from tests.carrier_feeds.conftest import events_url, recorded
from tests.factories import CarrierFactory
from tracking.models import CustodyEntry, Scan, Shipment

pytestmark = pytest.mark.django_db


def _counts():
    with dangerously_all_organizations():
        return (
            InboundCarrierEvent.dangerously_unscoped.count(),
            Scan.dangerously_unscoped.count(),
        )


def _status(shipment):
    with dangerously_all_organizations():
        return Shipment.dangerously_unscoped.get(pk=shipment.pk).status


def test_aftership_delivery_goes_through_the_scan_service(make_feed, shipment_of, carrier_client):
    feed = make_feed("aftership")
    shipment = shipment_of("AF-0001", status="out_for_delivery")
    response = carrier_client.post(
        events_url(feed), recorded("aftership_delivered.json"), format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["received"] == 1 and body["duplicate"] is False
    result = body["results"][0]
    assert (result["scan_type"], result["result"], result["flagged"]) == (
        "delivered",
        "applied",
        False,
    )
    assert result["shipment"]["status"] == "delivered"
    assert _status(shipment) == "delivered"
    with dangerously_all_organizations():
        scan = Scan.dangerously_unscoped.get(shipment=shipment)
        assert scan.carrier_status_code == "Delivered_001"
        assert scan.api_key is not None and scan.api_key.carrier_id == feed.carrier_id
        assert CustodyEntry.dangerously_unscoped.filter(shipment=shipment).count() == 1
        event = InboundCarrierEvent.dangerously_unscoped.get()
        assert event.scan_id == scan.pk and event.shipment_id == shipment.pk
        assert event.raw["msg"]["tracking_number"] == "AF-0001"


def test_the_same_event_twice_is_a_duplicate(make_feed, shipment_of, carrier_client):
    feed = make_feed("aftership", config={"timezone": "America/Santiago"})
    shipment = shipment_of("AF-0002", status="out_for_delivery")
    payload = recorded("aftership_attempt_failed.json")
    first = carrier_client.post(events_url(feed), payload, format="json").json()
    assert first["results"][0]["result"] == "applied"
    assert first["results"][0]["reason_code"] == "not_home"
    before = _counts()
    again = carrier_client.post(events_url(feed), payload, format="json")
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["results"][0]["id"] == first["results"][0]["id"]
    assert _counts() == before
    assert _status(shipment) == "attempt_failed"


def test_events_without_ids_and_repeats_inside_one_body(make_feed, shipment_of, carrier_client):
    feed = make_feed("native")
    shipment_of("NAT-9")
    item = {"barcode": "NAT-9", "status": "out_for_delivery", "occurred_at": "2026-11-20T10:00:00Z"}
    body = carrier_client.post(events_url(feed), {"events": [item, item]}, format="json").json()
    assert [r["duplicate"] for r in body["results"]] == [False, True]
    assert body["results"][0]["id"] == body["results"][1]["id"]
    assert carrier_client.post(events_url(feed), {"events": [item]}, format="json").json()[
        "duplicate"
    ]


def test_a_late_event_never_reopens_a_delivered_shipment(make_feed, shipment_of, carrier_client):
    feed = make_feed("native")
    shipment = shipment_of("LATE-1", status="out_for_delivery")
    delivered = {
        "event_id": "d",
        "barcode": "LATE-1",
        "status": "delivered",
        "occurred_at": "2026-11-20T12:00:00Z",
    }
    late = {
        "event_id": "o",
        "barcode": "LATE-1",
        "status": "out_for_delivery",
        "occurred_at": "2026-11-20T09:00:00Z",
    }
    carrier_client.post(events_url(feed), {"events": [delivered]}, format="json")
    body = carrier_client.post(events_url(feed), {"events": [late]}, format="json").json()
    assert body["results"][0]["result"] == "illegal"
    assert body["results"][0]["shipment"]["status"] == "delivered"
    assert _status(shipment) == "delivered"


def test_an_unknown_barcode_is_kept(make_feed, carrier_client):
    feed = make_feed("native")
    item = {
        "event_id": "u",
        "barcode": "NOPE",
        "status": "delivered",
        "occurred_at": "2026-11-20T12:00:00Z",
    }
    body = carrier_client.post(events_url(feed), {"events": [item]}, format="json").json()
    assert body["results"][0]["result"] == "unknown_barcode"
    assert body["results"][0]["shipment"] is None
    assert _counts() == (1, 1)


def test_unknown_codes_are_kept_flagged_listed_and_reprocessed(
    tenant, make_feed, shipment_of, carrier_client, api_client_for
):
    feed = make_feed("aftership")
    shipment = shipment_of("AF-0003", status="out_for_delivery")
    response = carrier_client.post(
        events_url(feed), recorded("aftership_unknown_subtag.json"), format="json"
    )
    assert response.status_code == 200
    result = response.json()["results"][0]
    assert (result["flagged"], result["result"], result["scan_type"]) == (True, "unmapped", None)
    assert _counts() == (1, 0)  # kept, not applied
    assert _status(shipment) == "out_for_delivery"

    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    listed = ops.get(
        f"/api/v1/carrier-feed-events/?flagged=true&carrier={tenant.carrier.pk}"
    ).json()
    assert listed["count"] == 1 and listed["results"][0]["carrier_status_code"] == "HeldAtDepot_001"
    assert ops.get("/api/v1/carrier-feed-events/?flagged=false").json()["count"] == 0
    assert ops.get("/api/v1/carrier-feed-events/?result=unmapped").json()["count"] == 1
    assert ops.get(f"/api/v1/carrier-feeds/{feed.pk}/").json()["flagged_events"] == 1

    # Still unknown: re-processing changes nothing.
    admin = api_client_for(tenant.user(Role.ADMIN))
    again = admin.post(f"/api/v1/carrier-feeds/{feed.pk}/reprocess/").json()
    assert (again["reprocessed"], again["still_flagged"]) == (0, 1)

    # Fix the mapping (an ops manager configures feeds), then re-process the event.
    patched = ops.patch(
        f"/api/v1/carrier-feeds/{feed.pk}/",
        {"config": {"status_map": {"HeldAtDepot": "exception"}}},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    event_id = listed["results"][0]["id"]
    done = admin.post(f"/api/v1/carrier-feed-events/{event_id}/reprocess/").json()
    assert (done["reprocessed"], done["still_flagged"]) == (1, 0)
    assert done["events"][0]["result"] == "applied"
    assert done["events"][0]["scan_type"] == "exception"
    assert _status(shipment) == "exception"
    assert ops.get("/api/v1/carrier-feed-events/?flagged=true").json()["count"] == 0


def test_malformed_bodies_are_400_naming_the_place_and_store_nothing(make_feed, carrier_client):
    feed = make_feed("native")
    bad = {
        "events": [
            {"barcode": "X", "status": "delivered", "occurred_at": "2026-11-20T10:00:00Z"},
            {"barcode": "Y", "status": "delivered", "occurred_at": "soon"},
        ]
    }
    response = carrier_client.post(events_url(feed), bad, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_payload"
    assert response.json()["fields"] == {"events[1].occurred_at": ["Not an ISO-8601 time: 'soon'."]}
    raw = carrier_client.post(events_url(feed), "{not json", content_type="application/json")
    assert raw.status_code == 400 and raw.json()["error"] == "parse_error"
    assert _counts() == (0, 0)


def test_a_key_of_another_carrier_or_organization_gets_404(
    tenant, other_tenant, make_feed, shipment_of, api_client_for, api_key_for
):
    feed = make_feed("native")
    shipment_of("K-1")
    other_carrier = CarrierFactory(organization=tenant.organization, code="rival")
    rival = api_client_for(
        key=api_key_for(tenant, scopes=["tracking:write"], carrier=other_carrier)
    )
    foreign = api_client_for(key=api_key_for(other_tenant, carrier=other_tenant.carrier))
    body = {
        "events": [{"barcode": "K-1", "status": "delivered", "occurred_at": "2026-11-20T10:00:00Z"}]
    }
    assert rival.post(events_url(feed), body, format="json").status_code == 404
    assert foreign.post(events_url(feed), body, format="json").status_code == 404
    assert rival.get("/api/v1/carrier-feed-events/").json()["count"] == 0
    assert _counts() == (0, 0)


def test_a_feed_moves_only_its_own_carriers_shipments(
    tenant, make_feed, shipment_of, api_client_for
):
    """Even an admin posting to a feed cannot reach another carrier's parcels through it."""
    feed = make_feed("native")
    other = CarrierFactory(organization=tenant.organization, code="rival")
    parcel = shipment_of("RIVAL-1", carrier=other, status="out_for_delivery")
    admin = api_client_for(tenant.user(Role.ADMIN))
    body = {
        "events": [
            {"barcode": "RIVAL-1", "status": "delivered", "occurred_at": "2026-11-20T10:00:00Z"}
        ]
    }
    result = admin.post(events_url(feed), body, format="json").json()["results"][0]
    assert result["result"] == "unknown_barcode"
    assert _status(parcel) == "out_for_delivery"


def test_who_may_post_and_configure(tenant, make_feed, api_client_for, api_key_for):
    feed = make_feed("native")
    body = {
        "events": [{"barcode": "Z", "status": "delivered", "occurred_at": "2026-11-20T10:00:00Z"}]
    }
    reader = api_client_for(
        key=api_key_for(tenant, scopes=["tracking:read"], carrier=tenant.carrier)
    )
    assert reader.post(events_url(feed), body, format="json").status_code == 403
    driver = api_client_for(tenant.user(Role.DRIVER))
    assert driver.post(events_url(feed), body, format="json").status_code == 403
    assert driver.get("/api/v1/carrier-feeds/").status_code == 403
    assert driver.get("/api/v1/carrier-feed-events/").status_code == 403
    # Dispatchers and carrier users post events and read feeds, but do not configure them.
    for role in (Role.DISPATCHER, Role.CARRIER_USER):
        client = api_client_for(tenant.user(role))
        assert client.post(events_url(feed), body, format="json").status_code == 200, role
        assert client.get("/api/v1/carrier-feeds/").json()["count"] == 1
        assert (
            client.patch(
                f"/api/v1/carrier-feeds/{feed.pk}/", {"name": "x"}, format="json"
            ).status_code
            == 403
        )
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    created = ops.post(
        "/api/v1/carrier-feeds/",
        {
            "carrier": tenant.carrier.pk,
            "name": "generic",
            "adapter": "generic_json",
            "config": {"fields": {"barcode": "id"}, "status_map": {"X": "flying"}},
        },
        format="json",
    )
    assert created.status_code == 400
    assert set(created.json()["fields"]) == {
        "config.fields.status",
        "config.fields.occurred_at",
        "config.status_map.X",
    }
    # Ops managers read events but do not post them (tracking is read-only for them).
    assert ops.post(events_url(feed), body, format="json").status_code == 403


def test_a_paused_feed_refuses_events(make_feed, carrier_client, tenant, api_client_for):
    feed = make_feed("native")
    api_client_for(tenant.user(Role.OPS_MANAGER)).patch(
        f"/api/v1/carrier-feeds/{feed.pk}/", {"is_active": False}, format="json"
    )
    body = {
        "events": [{"barcode": "Z", "status": "delivered", "occurred_at": "2026-11-20T10:00:00Z"}]
    }
    response = carrier_client.post(events_url(feed), body, format="json")
    assert response.status_code == 409
    assert _counts() == (0, 0)


def test_list_and_batch_query_counts_do_not_grow_with_rows(
    tenant, make_feed, shipment_of, carrier_client, api_client_for, django_assert_max_num_queries
):
    feed = make_feed("native")
    events = []
    for n in range(30):
        shipment_of(f"Q-{n}", status="out_for_delivery")
        events.append(
            {
                "event_id": f"q{n}",
                "barcode": f"Q-{n}",
                "status": "delivered",
                "occurred_at": "2026-11-20T10:00:00Z",
            }
        )
    events.append({"barcode": "Q-0", "status": "mystery", "occurred_at": "2026-11-20T10:00:00Z"})
    response = carrier_client.post(events_url(feed), {"events": events}, format="json")
    assert response.status_code == 200 and response.json()["flagged"] == 1
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    with django_assert_max_num_queries(12):
        listed = ops.get("/api/v1/carrier-feed-events/?page_size=100")
    assert listed.json()["count"] == 31
    with django_assert_max_num_queries(12):
        feeds = ops.get("/api/v1/carrier-feeds/")
    assert feeds.json()["results"][0]["flagged_events"] == 1


def test_a_signed_feed_needs_the_carriers_hmac(
    tenant, make_feed, shipment_of, carrier_client, api_client_for
):
    import json

    from carriers.feeds.signing import sign

    feed = make_feed("aftership")
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    patched = ops.patch(
        f"/api/v1/carrier-feeds/{feed.pk}/", {"signing_secret": "s3cr3t"}, format="json"
    ).json()
    assert patched["signed"] is True and "signing_secret" not in patched
    assert patched["signature_header"] == "aftership-hmac-sha256"
    shipment_of("AF-0001", status="out_for_delivery")
    body = json.dumps(recorded("aftership_delivered.json")).encode()

    def post(signature=None):
        headers = {"HTTP_AFTERSHIP_HMAC_SHA256": signature} if signature else {}
        return carrier_client.post(
            events_url(feed), body, content_type="application/json", **headers
        )

    for wrong in (None, "bm9wZQ==", sign("other secret", body)):
        response = post(wrong)
        assert response.status_code == 401, response.content
        assert response.json()["error"] == "invalid_signature"
    assert _counts() == (0, 0)
    response = post(sign("s3cr3t", body))
    assert response.status_code == 200
    assert response.json()["results"][0]["result"] == "applied"
    # Removing the secret makes the feed unsigned again.
    assert (
        ops.patch(
            f"/api/v1/carrier-feeds/{feed.pk}/", {"signing_secret": ""}, format="json"
        ).json()["signed"]
        is False
    )


def test_generic_json_feed_end_to_end(tenant, shipment_of, carrier_client, api_client_for):
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    created = ops.post(
        "/api/v1/carrier-feeds/",
        {
            "carrier": tenant.carrier.pk,
            "name": "regional courier",
            "adapter": "generic_json",
            "config": recorded("generic_json_config.json"),
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    feed_id = created.json()["id"]
    assert created.json()["events_url"] == f"/api/v1/carrier-feeds/{feed_id}/events/"
    shipment = shipment_of("GEN-0001")
    response = carrier_client.post(
        f"/api/v1/carrier-feeds/{feed_id}/events/",
        recorded("generic_json_payload.json"),
        format="json",
    )
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["ignored", "applied", "applied"]
    assert [r["carrier_status_code"] for r in results] == ["LBL", "RT", "NE"]
    assert results[2]["reason_code"] == "refused"
    assert _status(shipment) == "attempt_failed"
    with dangerously_all_organizations():
        scan = Scan.dangerously_unscoped.get(shipment=shipment, scan_type="attempt_failed")
    assert (scan.reason_code, scan.carrier_reason_code) == ("refused", "REC")
