"""The admin: feeds with their config checked, the read-only event log with its "reprocess
flagged events" action, the import log; another organization's rows are not there."""

from __future__ import annotations

import pytest

from carriers.feeds.models import CarrierFeed, InboundCarrierEvent
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import dangerously_all_organizations
from tests.carrier_feeds.conftest import events_url

pytestmark = pytest.mark.django_db

UNKNOWN = {"events": [{"barcode": "AD-1", "status": "beamed", "occurred_at": "2026-11-20T10:00Z"}]}


def test_event_log_and_reprocess_action(
    tenant, other_tenant, make_feed, shipment_of, client, carrier_client
):
    feed = make_feed("native")
    theirs = make_feed("native", tenant_=other_tenant)
    shipment_of("AD-1", status="out_for_delivery")
    carrier_client.post(events_url(feed), UNKNOWN, format="json")
    with dangerously_all_organizations():
        event = InboundCarrierEvent.dangerously_unscoped.get()
    client.force_login(tenant.user(Role.OWNER))
    listing = client.get("/admin/carrier_feeds/inboundcarrierevent/")
    assert listing.status_code == 200 and b"beamed" in listing.content
    assert (
        client.get(f"/admin/carrier_feeds/inboundcarrierevent/{event.pk}/change/").status_code
        == 200
    )
    assert client.get("/admin/carrier_feeds/inboundcarrierevent/add/").status_code == 403
    assert client.get(f"/admin/carrier_feeds/carrierfeed/{theirs.pk}/change/").status_code in (
        302,
        404,
    )
    assert client.get("/admin/carrier_feeds/feedimport/").status_code == 200

    # Still unknown: the action leaves it flagged.
    action = {"action": "reprocess_flagged", "_selected_action": [event.pk]}
    client.post("/admin/carrier_feeds/inboundcarrierevent/", action)
    event.refresh_from_db()
    assert event.flagged

    with dangerously_all_organizations():
        CarrierFeed.dangerously_unscoped.filter(pk=feed.pk).update(
            config={"status_map": {"beamed": "delivered"}}
        )
    response = client.post("/admin/carrier_feeds/inboundcarrierevent/", action, follow=True)
    assert b"1 event(s) now mapped and applied" in response.content
    event.refresh_from_db()
    assert (event.flagged, event.result, event.scan_type) == (False, "applied", "delivered")


def test_feed_form_checks_the_config(tenant, client):
    client.force_login(tenant.user(Role.OWNER))
    response = client.post(
        "/admin/carrier_feeds/carrierfeed/add/",
        {
            "carrier": tenant.carrier.pk,
            "name": "g",
            "adapter": "generic_json",
            "config": '{"fields": {"barcode": "id"}}',
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    assert b"config.fields.status" in response.content
    response = client.post(
        "/admin/carrier_feeds/carrierfeed/add/",
        {
            "carrier": tenant.carrier.pk,
            "name": "n",
            "adapter": "native",
            "config": "{}",
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    with dangerously_all_organizations():
        assert (
            CarrierFeed.dangerously_unscoped.get(name="n").organization_id == tenant.organization.pk
        )
