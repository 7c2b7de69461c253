"""`POST /api/v1/incidents/`: a driver's phone or a dispatcher reports an incident on a route;
one incident alert per route, never cleared by the rules, resolved by a dispatcher."""

from __future__ import annotations

import pytest

from control_tower.events.models import OutboxEvent
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from exceptions.models import Alert, AlertState
from exceptions.sweep import sweep_organization
from tests.factories import RouteFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/incidents/"


@pytest.fixture
def route(tenant):
    with organization_scope(tenant.organization):
        return RouteFactory(
            organization=tenant.organization, carrier=tenant.carrier, status="in_progress"
        )


@pytest.fixture
def phone(tenant, device_for, device_client_for):
    _device, token = device_for(tenant)
    return device_client_for(token)


def incidents(org):
    with organization_scope(org):
        return list(Alert.objects.filter(kind="incident"))


def test_a_breakdown_from_the_phone_raises_one_critical_alert(tenant, route, phone):
    response = phone.post(URL, {"route": route.pk, "kind": "breakdown", "note": "Flat tyre"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "incident" and body["severity"] == "critical"

    again = phone.post(URL, {"route": route.pk, "kind": "breakdown", "note": "Still waiting"})
    assert again.status_code == 201 and again.json()["id"] == body["id"]

    (alert,) = incidents(tenant.organization)
    assert alert.subject_type == "route" and alert.route_id == route.pk
    assert alert.detail["note"] == "Still waiting" and alert.detail["incident"] == "breakdown"
    assert alert.carrier_id == tenant.carrier.pk
    with organization_scope(tenant.organization):
        assert OutboxEvent.objects.filter(type="alert.raised").count() == 1


def test_a_dispatcher_reports_and_resolves_and_the_sweep_never_clears_it(
    tenant, route, api_client_for
):
    client = api_client_for(tenant.user(Role.DISPATCHER))
    response = client.post(URL, {"route": route.pk, "kind": "other", "note": "Road closed"})
    assert response.status_code == 201, response.content
    assert response.json()["severity"] == "high"
    sweep_organization(tenant.organization)
    (alert,) = incidents(tenant.organization)
    assert alert.state == AlertState.OPEN

    resolved = client.post(
        f"/api/v1/alerts/{alert.pk}/resolve/", {"resolution_code": "fixed"}, format="json"
    )

    assert resolved.status_code == 200, resolved.content
    (alert,) = incidents(tenant.organization)
    assert alert.state == AlertState.RESOLVED and not alert.auto_resolved


def test_refusals_are_json_errors(tenant, other_tenant, route, phone, api_client_for):
    with organization_scope(other_tenant.organization):
        foreign = RouteFactory(organization=other_tenant.organization, carrier=other_tenant.carrier)

    unknown_kind = phone.post(URL, {"route": route.pk, "kind": "fire"})
    assert unknown_kind.status_code == 400
    assert "kind" in unknown_kind.json()["fields"]
    no_route = phone.post(URL, {"kind": "accident"})
    assert no_route.status_code == 400 and "route" in no_route.json()["fields"]
    elsewhere = phone.post(URL, {"route": foreign.pk, "kind": "accident"})
    assert elsewhere.status_code == 404
    driver_login = api_client_for(tenant.user(Role.DRIVER))
    assert driver_login.post(URL, {"route": route.pk, "kind": "other"}).status_code == 403
    assert incidents(tenant.organization) == []
    assert incidents(other_tenant.organization) == []
