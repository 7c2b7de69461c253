"""The links API: the URL once at creation, re-issue, list (no tokens), revoke; rights from
the grants table; other organizations get 404; the rating and actions are visible to staff."""

from __future__ import annotations

import pytest

from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import ShipmentFactory
from tracking.models import TrackingLink
from tracking.services.tracking_links import link_issue, link_resolve

pytestmark = pytest.mark.django_db
V1 = "/api/v1"


@pytest.fixture(autouse=True)
def _fresh_limits():
    ratelimit_reset()
    yield
    ratelimit_reset()


def _body(n=1):
    return {
        "reference": f"ORD-{n}",
        "barcode": f"BC-{n}",
        "recipient_name": "Ana",
        "address_line1": "Av. del Mar 1",
        "city": "La Serena",
        "country_code": "CL",
    }


def _token(url: str) -> str:
    return url.rsplit("/t/", 1)[1]


def test_creation_answers_the_tracking_url_once(tenant, api_client_for, settings):
    settings.PUBLIC_BASE_URL = "https://ct.example.org"
    client = api_client_for(tenant.user(Role.DISPATCHER))
    response = client.post(f"{V1}/shipments/", _body(), format="json")
    assert response.status_code == 201, response.content
    url = response.json()["tracking_url"]
    assert url.startswith("https://ct.example.org/t/")
    link = link_resolve(_token(url))
    assert link is not None and link.shipment_id == response.json()["id"]
    assert link.source == "created"
    again = client.get(f"{V1}/shipments/{response.json()['id']}/").json()
    assert "tracking_url" not in again
    assert _token(url) not in str(client.get(f"{V1}/shipments/").json())


def test_refused_creation_issues_no_link(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.DISPATCHER))
    assert client.post(f"{V1}/shipments/", _body(), format="json").status_code == 201
    duplicate = client.post(f"{V1}/shipments/", _body(), format="json")
    assert duplicate.status_code == 400
    assert TrackingLink.dangerously_unscoped.count() == 1


def test_bulk_creation_answers_one_url_each(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.DISPATCHER))
    response = client.post(
        f"{V1}/shipments/bulk/", {"shipments": [_body(1), _body(2)]}, format="json"
    )
    assert response.status_code == 201, response.content
    rows = response.json()["shipments"]
    for row in rows:
        assert link_resolve(_token(row["tracking_url"])).shipment_id == row["id"]
    assert len({row["tracking_url"] for row in rows}) == 2


def test_reissue_list_and_revoke(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.DISPATCHER))
    created = client.post(f"{V1}/shipments/", _body(), format="json").json()
    first = _token(created["tracking_url"])
    base = f"{V1}/shipments/{created['id']}/tracking-links/"
    issued = client.post(base, {"language": "en"}, format="json")
    assert issued.status_code == 201, issued.content
    second = _token(issued.json()["url"])
    assert second != first and issued.json()["language"] == "en"
    assert link_resolve(first) is not None  # the SMS already sent keeps working
    listing = client.get(base)
    assert listing.status_code == 200
    rows = listing.json()
    assert [r["source"] for r in rows] == ["reissued", "created"]
    assert all(r["status"] == "active" for r in rows)
    text = listing.content.decode()
    for secret in (
        first,
        second,
        *TrackingLink.dangerously_unscoped.values_list("token_hash", flat=True),
    ):
        assert secret not in text
    revoked = client.delete(f"{base}{rows[1]['id']}/")
    assert revoked.status_code == 204
    assert link_resolve(first) is None and link_resolve(second) is not None
    assert client.get(base).json()[1]["status"] == "revoked"
    assert client.delete(f"{base}{rows[1]['id']}/").status_code == 204  # twice is fine
    assert client.post(base, {"language": "xx"}, format="json").status_code == 400


def test_a_link_of_another_shipment_is_not_found_under_this_one(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.DISPATCHER))
    a = client.post(f"{V1}/shipments/", _body(1), format="json").json()
    b = client.post(f"{V1}/shipments/", _body(2), format="json").json()
    b_link = TrackingLink.dangerously_unscoped.get(shipment_id=b["id"])
    response = client.delete(f"{V1}/shipments/{a['id']}/tracking-links/{b_link.pk}/")
    assert response.status_code == 404 and response.json()["error"] == "not_found"
    assert link_resolve(_token(b["tracking_url"])) is not None


def test_rights_come_from_the_grants_table(tenant, api_client_for, api_key_for):
    with organization_scope(tenant.organization):
        shipment = ShipmentFactory(organization=tenant.organization)
        link, _ = link_issue(shipment, actor=None)
    base = f"{V1}/shipments/{shipment.pk}/tracking-links/"
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))  # shipments: read
    assert ops.get(base).status_code == 200
    assert ops.post(base, {}, format="json").status_code == 403
    assert ops.delete(f"{base}{link.pk}/").status_code == 403
    driver = api_client_for(tenant.user(Role.DRIVER))  # shipments: none
    assert driver.get(base).status_code == 403
    reader = api_client_for(key=api_key_for(tenant, scopes=["shipments:read"]))
    assert reader.get(base).status_code == 200
    assert reader.post(base, {}, format="json").status_code == 403
    writer = api_client_for(key=api_key_for(tenant, scopes=["shipments:write"]))
    assert writer.post(base, {}, format="json").status_code == 201
    assert TrackingLink.dangerously_unscoped.get(pk=link.pk).revoked_at is None


def test_another_organization_cannot_revoke_our_links(
    tenant, other_tenant, api_client_for, api_key_for
):
    with organization_scope(tenant.organization):
        shipment = ShipmentFactory(organization=tenant.organization)
        link, raw = link_issue(shipment, actor=None)
    for client in (
        api_client_for(other_tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(other_tenant)),
    ):
        url = f"{V1}/shipments/{shipment.pk}/tracking-links/{link.pk}/"
        response = client.delete(url)
        assert response.status_code == 404 and response.json()["error"] == "not_found"
        assert client.get(f"{V1}/shipments/{shipment.pk}/tracking-links/").status_code == 404
        assert client.post(f"{V1}/shipments/{shipment.pk}/tracking-links/").status_code == 404
    assert link_resolve(raw) is not None
    assert TrackingLink.dangerously_unscoped.filter(shipment=shipment).count() == 1


def test_staff_see_the_rating_and_the_recipients_actions(tenant, api_client_for):
    from tests.tracking.test_customer_actions import Scene
    from tracking.services import customer_actions, stop_complete

    scene = Scene(tenant)
    customer_actions.customer_set_instructions(scene.link, text="Gate 12", key="form-key-9001")
    with organization_scope(scene.org):
        stop_complete(stop=scene.stop, actor=None)
    customer_actions.customer_rate(scene.link, stars=5, comment="Great", key="form-key-9002")
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    shipment = client.get(f"{V1}/shipments/{scene.shipment.pk}/").json()
    assert shipment["delivery_instructions"] == "Gate 12"
    assert shipment["rating"]["stars"] == 5 and shipment["rating"]["comment"] == "Great"
    assert shipment["rating"]["driver"] == scene.driver.pk
    other = client.get(f"{V1}/shipments/{scene.lonely.pk}/").json()
    assert other["rating"] is None
    actions = client.get(f"{V1}/shipments/{scene.shipment.pk}/customer-actions/").json()
    assert [a["kind"] for a in actions] == ["rating", "instructions"]
    assert "key" not in actions[0]


def test_admins_set_the_tracking_settings_and_bad_ones_are_refused(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.ADMIN))
    good = {
        "tracking_link_days": 14,
        "default_language": "en",
        "reschedule_windows": [["08:00", "12:00"]],
        "reschedule_weekdays": [0, 2, 4],
        "tracking_host": "track.acme.example",
    }
    response = client.patch(f"{V1}/organization/", good, format="json")
    assert response.status_code == 200, response.content
    assert {k: response.json()[k] for k in good} == good
    for bad, field in (
        ({"reschedule_windows": [["12:00", "08:00"]]}, "reschedule_windows"),
        ({"reschedule_windows": [["8am", "noon"]]}, "reschedule_windows"),
        ({"reschedule_weekdays": [7]}, "reschedule_weekdays"),
        ({"tracking_link_days": 0}, "tracking_link_days"),
        ({"default_language": "fr"}, "default_language"),
        ({"accent_color": "red"}, "accent_color"),
    ):
        response = client.patch(f"{V1}/organization/", bad, format="json")
        assert response.status_code == 400, (bad, response.content)
        assert field in response.json()["fields"], (bad, response.json())
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    refused = dispatcher.patch(f"{V1}/organization/", {"tracking_link_days": 3}, format="json")
    assert refused.status_code == 403
