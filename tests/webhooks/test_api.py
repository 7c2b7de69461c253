"""`/api/v1/webhook-endpoints/`, `/webhook-deliveries/`, `/webhook-settings/`: CRUD and actions,
4xx JSON, the secret shown once, other organizations' ids answer 404 like missing ones, the
carrier matrix (users and keys bound to a carrier) and the role and scope matrix."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import CarrierFactory
from tests.webhooks.conftest import deliveries, emit_status, make_endpoint, pump
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

V1 = "/api/v1"
ENDPOINTS = f"{V1}/webhook-endpoints/"
DELIVERIES = f"{V1}/webhook-deliveries/"
SETTINGS = f"{V1}/webhook-settings/"
BODY = {"name": "ERP", "url": "https://erp.example.com/hooks", "event_types": ["shipment.*"]}


def ids(response):
    assert response.status_code == 200, response.json()
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def owner_api(tenant, api_client_for):
    return api_client_for(tenant.user(Role.OWNER))


@pytest.fixture
def world(tenant):
    """Two endpoints of the tenant (one bound to its carrier, one to another carrier) and one
    organization-wide, each with a delivery."""
    other_carrier = CarrierFactory(organization=tenant.organization, code="other-fleet")
    mine, _ = make_endpoint(tenant, "https://a.example.com/h", carrier_id=tenant.carrier.pk)
    theirs, _ = make_endpoint(tenant, "https://b.example.com/h", carrier_id=other_carrier.pk)
    everyone, _ = make_endpoint(tenant, "https://c.example.com/h")
    emit_status(tenant, shipment_id=1, status="delivered", carrier_id=tenant.carrier.pk)
    emit_status(tenant, shipment_id=2, status="delivered", carrier_id=other_carrier.pk)
    from control_tower.events.relay import relay_pending

    relay_pending(budget_s=5)
    by_endpoint = {d.endpoint_id: d for d in deliveries()}
    return {
        "mine": mine,
        "theirs": theirs,
        "everyone": everyone,
        "other_carrier": other_carrier,
        "mine_delivery": by_endpoint[mine.pk],
        "theirs_delivery": by_endpoint[theirs.pk],
    }


def test_create_shows_the_secret_once_and_never_again(owner_api):
    created = owner_api.post(ENDPOINTS, BODY, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["shipment.*"] and body["enabled"] is True
    shown = owner_api.get(f"{ENDPOINTS}{body['id']}/").json()
    assert "secret" not in shown and body["secret"] not in str(shown)
    assert body["secret"] not in str(owner_api.get(ENDPOINTS).json())

    rotated = owner_api.post(f"{ENDPOINTS}{body['id']}/rotate-secret/", {"overlap_hours": 2})
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != body["secret"]
    assert rotated.json()["secret_rotating_until"] is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "ftp://x.example.com/"}, "url"),
        ({"url": "https://u:p@x.example.com/"}, "url"),
        ({"event_types": ["vehicle.moved"]}, "event_types"),
        ({"event_types": ["nothing.happened"]}, "event_types"),
        ({"event_types": []}, "event_types"),
        ({"name": ""}, "name"),
        ({"carrier": 987654}, "carrier"),
    ],
)
def test_bad_bodies_are_400_json_naming_the_field(owner_api, change, field):
    response = owner_api.post(ENDPOINTS, {**BODY, **change}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == "validation_error"
    assert field in response.json()["fields"]


def test_live_only_types_are_refused_with_a_clear_message(owner_api):
    response = owner_api.post(ENDPOINTS, {**BODY, "event_types": ["vehicle.moved"]}, format="json")
    assert "live only" in response.json()["fields"]["event_types"][0]


def test_update_enable_and_delete(owner_api, world):
    url = f"{ENDPOINTS}{world['everyone'].pk}/"
    patched = owner_api.patch(url, {"enabled": False, "name": "Renamed"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False and patched.json()["name"] == "Renamed"
    assert patched.json()["disabled_at"] is not None
    enabled = owner_api.post(f"{url}enable/")
    assert enabled.json()["enabled"] is True and enabled.json()["consecutive_failures"] == 0
    put = owner_api.put(url, {**BODY, "event_types": ["*"]}, format="json")
    assert put.status_code == 200 and put.json()["event_types"] == ["*"]
    assert owner_api.delete(url).status_code == 204
    assert owner_api.get(url).status_code == 404


def test_test_ping_and_replays_through_the_api(owner_api, world):
    endpoint = world["everyone"]
    ping = owner_api.post(f"{ENDPOINTS}{endpoint.pk}/test/")
    assert ping.status_code == 202 and ping.json()["event_type"] == "webhook.test"

    original = deliveries(endpoint_id=endpoint.pk, seq=0, event_type="shipment.status_changed")
    replay = owner_api.post(f"{DELIVERIES}{original[0].pk}/replay/")
    assert replay.status_code == 202
    assert replay.json()["replay_of"] == original[0].pk and replay.json()["seq"] == 1
    assert replay.json()["message_id"] == original[0].message_id

    since = (timezone.now() - timedelta(hours=1)).isoformat()
    many = owner_api.post(f"{ENDPOINTS}{endpoint.pk}/replay/", {"since": since}, format="json")
    assert many.status_code == 202 and many.json() == {"replayed": 2}
    bad = owner_api.post(f"{ENDPOINTS}{endpoint.pk}/replay/", {"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["fields"]


def test_delivery_list_filters_and_detail_with_attempts(tenant, owner_api, receivers):
    receiver = receivers()
    receiver.verify = False
    receiver.fail_next = 1
    endpoint, _ = make_endpoint(tenant, receiver.url)
    emit_status(tenant, shipment_id=5, status="delivered")
    pump(lambda: len(receiver.accepted()) == 1)
    [delivery] = deliveries(endpoint_id=endpoint.pk)

    assert ids(owner_api.get(DELIVERIES, {"endpoint": endpoint.pk})) == {delivery.pk}
    assert ids(owner_api.get(DELIVERIES, {"status": "succeeded"})) == {delivery.pk}
    assert ids(owner_api.get(DELIVERIES, {"status": "dead"})) == set()
    assert ids(owner_api.get(DELIVERIES, {"event_type": "alert.raised"})) == set()
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert ids(owner_api.get(DELIVERIES, {"created_after": later})) == set()
    assert ids(owner_api.get(DELIVERIES, {"created_before": later})) == {delivery.pk}
    assert owner_api.get(DELIVERIES, {"status": "nope"}).status_code == 400

    detail = owner_api.get(f"{DELIVERIES}{delivery.pk}/").json()
    assert detail["payload"]["type"] == "shipment.status_changed"
    assert [a["response_status"] for a in detail["attempt_log"]] == [500, 204]
    assert detail["attempt_log"][0]["error"] == "HTTP 500"


def test_other_organizations_ids_answer_404_like_missing_ones(world, other_tenant, api_client_for):
    foreign = api_client_for(other_tenant.user(Role.OWNER))
    missing = 99_999_999
    assert ids(foreign.get(ENDPOINTS)) == set()
    assert ids(foreign.get(DELIVERIES)) == set()
    for endpoint_url in (f"{ENDPOINTS}{world['everyone'].pk}/", f"{ENDPOINTS}{missing}/"):
        assert foreign.get(endpoint_url).status_code == 404
        assert foreign.patch(endpoint_url, {"name": "x"}, format="json").status_code == 404
        assert foreign.delete(endpoint_url).status_code == 404
        for verb in ("enable", "test", "rotate-secret"):
            assert foreign.post(f"{endpoint_url}{verb}/").status_code == 404
        replay = foreign.post(f"{endpoint_url}replay/", {"since": timezone.now().isoformat()})
        assert replay.status_code == 404
    for delivery_url in (f"{DELIVERIES}{world['mine_delivery'].pk}/", f"{DELIVERIES}{missing}/"):
        assert foreign.get(delivery_url).status_code == 404
        assert foreign.post(f"{delivery_url}replay/").status_code == 404
    # Nothing of the first organization changed, and the other one's settings are its own.
    with organization_scope(world["everyone"].organization):
        assert WebhookEndpoint.objects.filter(pk=world["everyone"].pk, name="Integrator").exists()
    assert foreign.get(SETTINGS).json()["allowed_private_hosts"] == []  # not acme's list


def test_another_organizations_carrier_cannot_be_attached(
    world, tenant, other_tenant, api_client_for, api_key_for
):
    # Creating or editing with our carrier's id: refused as unknown, like a missing id.
    theirs, _ = make_endpoint(other_tenant, "https://theirs.example.com/h")
    for client in (
        api_client_for(other_tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(other_tenant)),
    ):
        created = client.post(ENDPOINTS, {**BODY, "carrier": tenant.carrier.pk}, format="json")
        assert created.status_code == 400 and "carrier" in created.json()["fields"]
        moved = client.patch(
            f"{ENDPOINTS}{theirs.pk}/", {"carrier": tenant.carrier.pk}, format="json"
        )
        assert moved.status_code == 400 and "carrier" in moved.json()["fields"]
    with organization_scope(other_tenant.organization):
        assert WebhookEndpoint.objects.get(pk=theirs.pk).carrier_id is None


def _carrier_clients(tenant, world, api_client_for, api_key_for):
    key = api_key_for(tenant, scopes=["webhooks:write"], carrier=tenant.carrier)
    return {
        "carrier user": api_client_for(tenant.user(Role.CARRIER_USER)),
        "carrier key": api_client_for(key=key),
    }


def test_carrier_matrix_endpoints_and_deliveries(tenant, world, api_client_for, api_key_for):
    visible = {world["mine"].pk}
    for label, client in _carrier_clients(tenant, world, api_client_for, api_key_for).items():
        assert ids(client.get(ENDPOINTS)) == visible, label
        assert ids(client.get(DELIVERIES)) == {world["mine_delivery"].pk}, label
        for hidden in (world["theirs"], world["everyone"]):
            url = f"{ENDPOINTS}{hidden.pk}/"
            assert client.get(url).status_code == 404, label
            assert client.patch(url, {"name": "x"}, format="json").status_code == 404, label
            assert client.put(url, BODY, format="json").status_code == 404, label
            for action in ("rotate-secret", "enable", "test", "replay"):
                body = {"since": "2026-01-01T00:00:00Z"} if action == "replay" else {}
                response = client.post(f"{url}{action}/", body, format="json")
                assert response.status_code == 404, (label, action)
            assert client.delete(url).status_code == 404, label
        hidden_delivery = f"{DELIVERIES}{world['theirs_delivery'].pk}/"
        assert client.get(hidden_delivery).status_code == 404, label
        assert client.post(f"{hidden_delivery}replay/").status_code == 404, label
        assert client.get(f"{DELIVERIES}{world['mine_delivery'].pk}/").status_code == 200

        # What they create is bound to their carrier, whatever they ask.
        asked = {**BODY, "carrier": world["other_carrier"].pk}
        created = client.post(ENDPOINTS, asked, format="json")
        assert created.status_code == 201, (label, created.json())
        assert created.json()["carrier"] == tenant.carrier.pk, label
        visible.add(created.json()["id"])
        moved = client.patch(f"{ENDPOINTS}{world['mine'].pk}/", {"carrier": None}, format="json")
        assert moved.json()["carrier"] == tenant.carrier.pk, label
        # The organization's settings are not theirs.
        assert client.get(SETTINGS).status_code == 403, label
        patched = client.patch(SETTINGS, {"allowed_private_hosts": ["10.0.0.0/8"]}, format="json")
        assert patched.status_code == 403, label


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.OWNER, 200, 201),
        (Role.ADMIN, 200, 201),
        (Role.OPS_MANAGER, 200, 403),
        (Role.CARRIER_USER, 200, 201),
        (Role.DISPATCHER, 403, 403),
        (Role.DRIVER, 403, 403),
    ],
)
def test_role_matrix(tenant, world, api_client_for, role, read, write):
    client = api_client_for(tenant.user(role))
    assert client.get(ENDPOINTS).status_code == read
    assert client.get(DELIVERIES).status_code == read
    assert client.post(ENDPOINTS, BODY, format="json").status_code == write
    if write == 403:
        replay = client.post(f"{DELIVERIES}{world['mine_delivery'].pk}/replay/")
        assert replay.status_code in (403, 404)
        assert client.post(f"{ENDPOINTS}{world['mine'].pk}/enable/").status_code == 403
    settings_status = 200 if role in (Role.OWNER, Role.ADMIN) else 403
    assert client.get(SETTINGS).status_code == settings_status
    patched = client.patch(SETTINGS, {"allowed_private_hosts": ["localhost"]}, format="json")
    assert patched.status_code == settings_status


def test_key_scopes(tenant, world, api_client_for, api_key_for):
    reader = api_client_for(key=api_key_for(tenant, scopes=["webhooks:read"]))
    writer = api_client_for(key=api_key_for(tenant, scopes=["webhooks:write"]))
    other = api_client_for(key=api_key_for(tenant, scopes=["shipments:write"]))
    assert reader.get(ENDPOINTS).status_code == 200
    assert reader.post(ENDPOINTS, BODY, format="json").status_code == 403
    assert reader.get(SETTINGS).status_code == 403
    assert writer.post(ENDPOINTS, BODY, format="json").status_code == 201
    assert writer.get(SETTINGS).status_code == 200
    assert other.get(ENDPOINTS).status_code == 403
    assert other.get(DELIVERIES).status_code == 403


def test_settings_get_and_patch(owner_api):
    assert owner_api.get(SETTINGS).json()["allowed_private_hosts"] == []
    patched = owner_api.patch(
        SETTINGS, {"allowed_private_hosts": ["localhost", "10.0.0.0/8"]}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["allowed_private_hosts"] == ["10.0.0.0/8", "localhost"]
    bad = owner_api.patch(SETTINGS, {"allowed_private_hosts": ["bad host!"]}, format="json")
    assert bad.status_code == 400 and "allowed_private_hosts" in bad.json()["fields"]
    assert bad.json()["error"] == "validation_error"


def test_the_delivery_list_costs_the_same_queries_for_many_rows(
    tenant, owner_api, django_assert_max_num_queries
):
    make_endpoint(tenant, "https://a.example.com/h")
    for shipment_id in range(30):
        emit_status(tenant, shipment_id=shipment_id, status="delivered")
    from control_tower.events.relay import relay_pending

    relay_pending(budget_s=5)
    with organization_scope(tenant.organization):
        assert WebhookDelivery.objects.count() == 30
    with django_assert_max_num_queries(8):
        assert len(ids(owner_api.get(DELIVERIES))) == 30


def test_a_private_literal_address_is_refused_until_the_allow_list_names_it(owner_api):
    body = {**BODY, "url": "http://10.0.0.5/hook"}
    refused = owner_api.post(ENDPOINTS, body, format="json")
    assert refused.status_code == 400
    assert "allow list" in refused.json()["fields"]["url"][0]
    local = owner_api.post(ENDPOINTS, {**BODY, "url": "http://localhost:9/h"}, format="json")
    assert local.status_code == 400
    owner_api.patch(SETTINGS, {"allowed_private_hosts": ["10.0.0.0/8"]}, format="json")
    assert owner_api.post(ENDPOINTS, body, format="json").status_code == 201
