"""Finding 4 (issue 18): authenticated API responses and the console page had no
`Cache-Control: no-store`. Now every response to a signed-in caller (session, API key, device
token) carries it unless the view chose its own caching."""

from __future__ import annotations

import pytest

from control_tower.tenancy.roles import Role

pytestmark = pytest.mark.django_db


def test_api_with_a_session_is_no_store(tenant, api_client_for):
    response = api_client_for(tenant.user(Role.DISPATCHER)).get("/api/v1/shipments/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_api_with_a_key_is_no_store(tenant, api_client_for, api_key_for):
    response = api_client_for(key=api_key_for(tenant)).get("/api/v1/hubs/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_api_with_a_device_token_is_no_store(tenant, device_for, device_client_for):
    _device, token = device_for(tenant)
    response = device_client_for(token).post("/api/v1/ingest/pings", [], format="json")
    assert response.status_code == 400  # an empty batch; still a signed-in answer
    assert response["Cache-Control"] == "no-store"


def test_console_page_is_no_store(tenant, client):
    client.force_login(tenant.user(Role.DISPATCHER))
    response = client.get("/console/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
