"""Finding 4 (issue 18): URL-level 404s under /ingest/ and /api/ answered HTML, and
`GET /api/v1/ingest/pings` answered 403 instead of 405. Now both are the JSON error body."""

from __future__ import annotations

import pytest

from control_tower.tenancy.roles import Role

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/nothing",
        "/api/v1/nothing/",
        "/api/v1/shipments/extra/segments/",
        "/ingest/nothing/",
        "/ingest/osmand/",  # no token: not a device path, reaches Django
        "/ingest/osmand/a/b/",
    ],
)
def test_unknown_machine_paths_answer_the_json_error_body(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "not_found", "detail": "Not found.", "fields": {}}


def test_unknown_page_paths_stay_html(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("auth", ["device", "session", "none"])
def test_get_on_the_ping_batch_is_405_for_everyone(
    tenant, device_for, device_client_for, api_client_for, auth
):
    if auth == "device":
        client = device_client_for(device_for(tenant)[1])
    elif auth == "session":
        client = api_client_for(tenant.user(Role.OWNER))
    else:
        client = api_client_for()
    response = client.get("/api/v1/ingest/pings")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert "POST" in response["Allow"]
