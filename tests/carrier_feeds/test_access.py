"""The carrier matrix of the carrier feed endpoints: carrier A's person and key (every scope)
see and touch only carrier A's feeds, events and imports; carrier B's answer like missing ones
and nothing of B changes. (The cross-tenant cases are generic, in
tests/control_tower/test_cross_tenant.py.)"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict

from carriers.feeds.models import CarrierFeed, FeedImport, InboundCarrierEvent
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from tests.factories import CarrierFactory
from tracking.models import Scan

pytestmark = pytest.mark.django_db

V1 = "/api/v1"
EVENT = {"events": [{"barcode": "B-1", "status": "nope", "occurred_at": "2026-11-20T10:00:00Z"}]}


def _world(tenant, make_feed, shipment_of):
    other = CarrierFactory(organization=tenant.organization, code="other-fleet")
    rows = {}
    for name, carrier in (("a", tenant.carrier), ("b", other)):
        feed = make_feed("native", carrier=carrier, name=f"feed {name}")
        shipment_of(f"BC-{name}", carrier=carrier, status="out_for_delivery")
        from carriers.feeds.services import events_receive
        from control_tower.tenancy.actors import actor_for_membership

        with organization_scope(tenant.organization):
            owner = actor_for_membership(tenant.members[Role.OWNER])
            event = events_receive(actor=owner, feed=feed, payload=EVENT)[0].event
            feed_import = FeedImport.objects.create(
                feed=feed, carrier=carrier, kind="status", file_name="f.csv", state="applied"
            )
        rows[name] = {
            "carrier-feeds": feed,
            "carrier-feed-events": event,
            "carrier-feed-imports": feed_import,
        }
    return other, rows


def _snapshot(obj):
    with dangerously_all_organizations():
        return model_to_dict(type(obj).dangerously_unscoped.get(pk=obj.pk))


def _counts():
    with dangerously_all_organizations():
        return tuple(
            m.dangerously_unscoped.count()
            for m in (CarrierFeed, InboundCarrierEvent, FeedImport, Scan)
        )


def test_carrier_matrix_feeds(tenant, make_feed, shipment_of, api_client_for, api_key_for):
    other, rows = _world(tenant, make_feed, shipment_of)
    callers = {
        "carrier user": api_client_for(tenant.user(Role.CARRIER_USER)),
        "carrier key": api_client_for(key=api_key_for(tenant, carrier=tenant.carrier)),
    }
    for label, client in callers.items():
        # Lists: A's rows only.
        for resource in ("carrier-feeds", "carrier-feed-events", "carrier-feed-imports"):
            response = client.get(f"{V1}/{resource}/")
            assert response.status_code == 200, (label, resource)
            ids = {row["id"] for row in response.json()["results"]}
            assert rows["a"][resource].pk in ids, (label, resource)
            assert rows["b"][resource].pk not in ids, (label, resource)
            assert {row["carrier"] for row in response.json()["results"]} == {tenant.carrier.pk}
            # Another carrier's id is answered like a missing one (400 either way).
            theirs = client.get(f"{V1}/{resource}/", {"carrier": other.pk})
            missing = client.get(f"{V1}/{resource}/", {"carrier": 987654321})
            assert theirs.status_code == missing.status_code == 400, (label, resource)
            assert theirs.json() == missing.json()
        # B's rows: 404 (or 403 where the caller lacks the grant), and unchanged.
        before = {k: _snapshot(v) for k, v in rows["b"].items()}
        counts = _counts()
        feed_b = rows["b"]["carrier-feeds"].pk
        event_b = rows["b"]["carrier-feed-events"].pk
        import_b = rows["b"]["carrier-feed-imports"].pk
        may_configure = label == "carrier key"  # the key has carriers:write; the person not
        attempts = [
            ("get", f"{V1}/carrier-feeds/{feed_b}/", {}, 404),
            ("put", f"{V1}/carrier-feeds/{feed_b}/", {"name": "x"}, 404 if may_configure else 403),
            (
                "patch",
                f"{V1}/carrier-feeds/{feed_b}/",
                {"name": "x"},
                404 if may_configure else 403,
            ),
            ("delete", f"{V1}/carrier-feeds/{feed_b}/", {}, 404 if may_configure else 403),
            ("post", f"{V1}/carrier-feeds/{feed_b}/events/", EVENT, 404),
            ("post", f"{V1}/carrier-feeds/{feed_b}/reprocess/", {}, 404),
            ("get", f"{V1}/carrier-feed-events/{event_b}/", {}, 404),
            ("post", f"{V1}/carrier-feed-events/{event_b}/reprocess/", {}, 404),
            ("get", f"{V1}/carrier-feed-imports/{import_b}/", {}, 404),
        ]
        for method, url, body, expected in attempts:
            response = getattr(client, method)(url, body, format="json")
            assert response.status_code == expected, (label, method, url, response.content)
        upload = client.post(
            f"{V1}/carrier-feeds/{feed_b}/imports/",
            {
                "file": SimpleUploadedFile("s.csv", b"barcode,status,occurred_at\nBC-b,x,y\n"),
                "kind": "status",
            },
            format="multipart",
        )
        assert upload.status_code == 404, label
        # A feed for carrier B cannot be created.
        created = client.post(
            f"{V1}/carrier-feeds/",
            {"carrier": other.pk, "name": "n", "adapter": "native"},
            format="json",
        )
        assert created.status_code == (400 if may_configure else 403), (label, created.content)
        if may_configure:
            assert "carrier" in created.json()["fields"]
        assert {k: _snapshot(v) for k, v in rows["b"].items()} == before, label
        assert _counts() == counts, label
        # Their own feed works: posting to it never reaches carrier B's parcels.
        mine = rows["a"]["carrier-feeds"].pk
        body = {
            "events": [
                {"barcode": "BC-b", "status": "delivered", "occurred_at": "2026-11-20T11:00Z"}
            ]
        }
        result = client.post(f"{V1}/carrier-feeds/{mine}/events/", body, format="json")
        assert result.status_code == 200, (label, result.content)
        assert result.json()["results"][0]["result"] in ("unknown_barcode",), label


def test_another_organization_sees_no_feed(
    tenant, other_tenant, make_feed, api_client_for, api_key_for
):
    feed = make_feed("native")
    for client in (
        api_client_for(other_tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(other_tenant)),
    ):
        assert (
            client.post(f"{V1}/carrier-feeds/{feed.pk}/events/", EVENT, format="json").status_code
            == 404
        )
        assert client.get(f"{V1}/carrier-feeds/").json()["count"] == 0
    assert _counts()[1] == 0
