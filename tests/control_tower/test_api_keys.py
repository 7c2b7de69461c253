"""API keys: shown once, stored hashed, scoped, revocable, expiring; last use recorded by a
real Celery worker."""

import datetime as dt

import pytest
from django.utils import timezone

from control_tower.models import ApiKey
from control_tower.tenancy.roles import Role
from control_tower.tenancy.secrets import hash_secret
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def test_owner_creates_a_key_shown_once_and_stored_hashed(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OWNER))
    response = client.post(
        "/api/v1/api-keys/", {"name": "ERP", "scopes": ["shipments:write"]}, format="json"
    )
    assert response.status_code == 201
    raw = response.json()["key"]
    assert raw.startswith("ctk_")
    key = ApiKey.dangerously_unscoped.get(pk=response.json()["id"])
    assert key.key_hash == hash_secret(raw) and raw not in key.key_hash
    assert key.organization_id == tenant.organization.pk
    listed = client.get("/api/v1/api-keys/").json()["results"]
    assert all("key" not in row for row in listed)
    detail = client.get(f"/api/v1/api-keys/{key.pk}/").json()
    assert "key" not in detail and detail["prefix"] == key.prefix


def test_key_works_until_revoked(tenant, api_client_for, api_key_for):
    raw = api_key_for(tenant, scopes=["shipments:read"])
    client = api_client_for(key=raw)
    assert client.get("/api/v1/shipments/").status_code == 200
    key = ApiKey.dangerously_unscoped.get(prefix=raw.split("_")[1])
    owner = api_client_for(tenant.user(Role.OWNER))
    assert owner.delete(f"/api/v1/api-keys/{key.pk}/").status_code == 204
    response = client.get("/api/v1/shipments/")
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    # Revoking again is fine, and the key stays listed as inactive.
    assert owner.delete(f"/api/v1/api-keys/{key.pk}/").status_code == 204
    row = owner.get(f"/api/v1/api-keys/{key.pk}/").json()
    assert row["is_active"] is False and row["revoked_at"]


def test_expired_and_garbled_keys_are_refused_alike(tenant, api_client_for, api_key_for):
    raw = api_key_for(tenant)
    ApiKey.dangerously_unscoped.filter(prefix=raw.split("_")[1]).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    for candidate in (raw, raw[:-2] + "xx", "ctk_0000000000_nope", "garbage"):
        response = api_client_for(key=candidate).get("/api/v1/me/")
        assert response.status_code == 401
        assert response.json()["detail"] == "Invalid, expired or revoked API key."


def test_scopes_limit_what_a_key_can_do(tenant, api_client_for, api_key_for):
    client = api_client_for(key=api_key_for(tenant, scopes=["shipments:read"]))
    assert client.get("/api/v1/shipments/").status_code == 200
    assert client.get("/api/v1/carriers/").status_code == 403
    response = client.post("/api/v1/hubs/", {}, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "error": "permission_denied",
        "detail": "Your role does not allow this.",
        "fields": {},
    }


def test_expiry_must_be_in_the_future(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OWNER))
    response = client.post(
        "/api/v1/api-keys/",
        {"name": "x", "scopes": ["hubs:read"], "expires_at": "2000-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 400
    assert "expires_at" in response.json()["fields"]


def test_only_owners_and_admins_manage_keys(tenant, api_client_for):
    for role in (Role.DISPATCHER, Role.OPS_MANAGER, Role.CARRIER_USER, Role.DRIVER):
        response = api_client_for(tenant.user(role)).get("/api/v1/api-keys/")
        assert response.status_code == 403, role


def test_carrier_bound_key_sees_only_its_carrier(tenant, api_client_for, api_key_for):
    from tests.factories import CarrierFactory, ShipmentFactory

    other_carrier = CarrierFactory(organization=tenant.organization)
    mine = ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)
    ShipmentFactory(organization=tenant.organization, carrier=other_carrier)
    client = api_client_for(key=api_key_for(tenant, carrier=tenant.carrier))
    rows = client.get("/api/v1/shipments/").json()["results"]
    assert [row["id"] for row in rows] == [mine.pk]


@pytest.mark.django_db(transaction=True)
def test_last_use_is_recorded_by_the_worker(tenant, api_client_for, api_key_for, celery_worker):
    raw = api_key_for(tenant)
    prefix = raw.split("_")[1]
    assert api_client_for(key=raw).get("/api/v1/me/").status_code == 200
    used = wait_for(
        lambda: ApiKey.dangerously_unscoped.filter(
            prefix=prefix, last_used_at__isnull=False
        ).first()
    )
    assert timezone.now() - used.last_used_at < dt.timedelta(seconds=30)


@pytest.mark.django_db(transaction=True)
def test_a_busy_key_queues_one_last_use_write_while_the_queue_is_behind(
    tenant, api_client_for, api_key_for, published_tasks
):
    client = api_client_for(key=api_key_for(tenant))
    for _ in range(5):  # however far behind the queue is, one write is asked for
        assert client.get("/api/v1/me/").status_code == 200
    assert published_tasks.count("control_tower.api_key_record_use") == 1
