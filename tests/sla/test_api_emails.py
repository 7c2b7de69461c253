"""`/api/v1/scorecard-emails/`: ops managers (reports write) manage them, dispatchers read them,
carrier users and carrier keys neither see nor manage any; recipients and carriers are the
organization's, and recipients must be allowed to read reports."""

from __future__ import annotations

import pytest

from carriers.sla.models import ScorecardEmail
from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope

pytestmark = pytest.mark.django_db

URL = "/api/v1/scorecard-emails/"


def _body(tenant, **overrides):
    body = {
        "name": "Monday scorecard",
        "recipients": [
            tenant.members[Role.OPS_MANAGER].pk,
            tenant.members[Role.CARRIER_USER].pk,
        ],
        "carriers": [tenant.carrier.pk],
        "weekday": 0,
        "hour": 7,
        "period_days": 7,
    }
    body.update(overrides)
    return body


def make_schedule(tenant, **fields) -> ScorecardEmail:
    with organization_scope(tenant.organization):
        schedule = ScorecardEmail.objects.create(
            organization=tenant.organization, name=fields.pop("name", "Weekly"), **fields
        )
        schedule.recipients.set([tenant.members[Role.OPS_MANAGER]])
    return schedule


def test_ops_manager_creates_reads_updates_and_deletes(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    response = client.post(URL, _body(tenant), format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert set(created["recipients"]) == set(_body(tenant)["recipients"])
    assert created["carriers"] == [tenant.carrier.pk]
    assert created["last_sent_at"] is None
    with organization_scope(tenant.organization):
        stored = ScorecardEmail.objects.get(pk=created["id"])
    assert stored.organization_id == tenant.organization.pk

    listed = client.get(URL).json()
    assert [row["id"] for row in listed["results"]] == [created["id"]]
    patched = client.patch(f"{URL}{created['id']}/", {"hour": 9, "weekday": 4}, format="json")
    assert patched.status_code == 200 and patched.json()["hour"] == 9
    assert client.delete(f"{URL}{created['id']}/").status_code == 204
    assert client.get(URL).json()["count"] == 0


def test_bad_schedule_fields_are_named(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    for overrides, field in (
        ({"weekday": 7}, "weekday"),
        ({"hour": 24}, "hour"),
        ({"period_days": 0}, "period_days"),
        ({"period_days": 93}, "period_days"),
        ({"recipients": []}, "recipients"),
        ({"recipients": [tenant.members[Role.DRIVER].pk]}, "recipients"),
    ):
        response = client.post(URL, _body(tenant, **overrides), format="json")
        assert response.status_code == 400, (overrides, response.content)
        assert field in response.json()["fields"], (overrides, response.json())
    with organization_scope(tenant.organization):
        assert ScorecardEmail.objects.count() == 0


def test_dispatcher_reads_but_cannot_change(tenant, api_client_for):
    schedule = make_schedule(tenant)
    client = api_client_for(tenant.user(Role.DISPATCHER))
    assert client.get(URL).json()["count"] == 1
    assert client.post(URL, _body(tenant), format="json").status_code == 403
    assert client.patch(f"{URL}{schedule.pk}/", {"hour": 3}, format="json").status_code == 403
    assert client.post(f"{URL}{schedule.pk}/send-now/").status_code == 403
    assert client.delete(f"{URL}{schedule.pk}/").status_code == 403


def test_carrier_users_and_keys_neither_see_nor_manage_them(tenant, api_client_for, api_key_for):
    schedule = make_schedule(tenant)
    for client in (
        api_client_for(tenant.user(Role.CARRIER_USER)),
        api_client_for(key=api_key_for(tenant, carrier=tenant.carrier)),
    ):
        assert client.get(URL).json()["count"] == 0
        assert client.get(f"{URL}{schedule.pk}/").status_code in (403, 404)
        assert client.patch(f"{URL}{schedule.pk}/", {"hour": 3}, format="json").status_code in (
            403,
            404,
        )
        assert client.post(f"{URL}{schedule.pk}/send-now/").status_code in (403, 404)
        assert client.delete(f"{URL}{schedule.pk}/").status_code in (403, 404)
    driver = api_client_for(tenant.user(Role.DRIVER))
    assert driver.get(URL).status_code == 403
    schedule.refresh_from_db()
    assert schedule.hour == 7


def test_api_key_scopes(tenant, api_client_for, api_key_for):
    reader = api_client_for(key=api_key_for(tenant, scopes=[Scope.REPORTS_READ]))
    assert reader.get(URL).status_code == 200
    assert reader.post(URL, _body(tenant), format="json").status_code == 403
    writer = api_client_for(key=api_key_for(tenant, scopes=[Scope.REPORTS_WRITE]))
    assert writer.post(URL, _body(tenant), format="json").status_code == 201


def test_another_organization_gets_404_and_cannot_point_at_our_rows(
    tenant, other_tenant, api_client_for, api_key_for
):
    schedule = make_schedule(tenant)
    for client in (
        api_client_for(other_tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(other_tenant)),
    ):
        assert client.get(URL).json()["count"] == 0
        for method, path, body in (
            ("get", f"{URL}{schedule.pk}/", None),
            ("patch", f"{URL}{schedule.pk}/", {"hour": 3}),
            ("put", f"{URL}{schedule.pk}/", _body(other_tenant)),
            ("delete", f"{URL}{schedule.pk}/", None),
            ("post", f"{URL}{schedule.pk}/send-now/", None),
        ):
            response = getattr(client, method)(path, body, format="json")
            assert response.status_code == 404, (method, path, response.content)
            assert response.json()["error"] == "not_found"
        for overrides, field in (
            ({"recipients": [tenant.members[Role.OPS_MANAGER].pk]}, "recipients"),
            ({"carriers": [tenant.carrier.pk]}, "carriers"),
        ):
            response = client.post(URL, _body(other_tenant, **overrides), format="json")
            assert response.status_code == 400, response.content
            assert field in response.json()["fields"]
    schedule.refresh_from_db()
    assert schedule.hour == 7
    with dangerously_all_organizations():
        assert ScorecardEmail.dangerously_unscoped.count() == 1
