"""What each role may do, checked through the API (the table in docs/API.md)."""

import pytest

from control_tower.tenancy.roles import Role
from tests.factories import RouteFactory, ShipmentFactory, stop_with_shipments

pytestmark = pytest.mark.django_db

R, W = "read", "write"
# resource path -> {role: rights}
EXPECTED = {
    "memberships": {"owner": R + W, "admin": R + W, "ops_manager": R},
    "invitations": {"owner": R + W, "admin": R + W, "ops_manager": R},
    "api-keys": {"owner": R + W, "admin": R + W},
    "carriers": {
        "owner": R + W,
        "admin": R + W,
        "dispatcher": R,
        "ops_manager": R + W,
        "carrier_user": R,
    },
    "drivers": {
        "owner": R + W,
        "admin": R + W,
        "dispatcher": R + W,
        "ops_manager": R,
        "carrier_user": R,
    },
    "vehicles": {
        "owner": R + W,
        "admin": R + W,
        "dispatcher": R + W,
        "ops_manager": R,
        "carrier_user": R,
    },
    "devices": {
        "owner": R + W,
        "admin": R + W,
        "dispatcher": R + W,
        "ops_manager": R,
        "carrier_user": R,
    },
    "hubs": {
        "owner": R + W,
        "admin": R + W,
        "dispatcher": R,
        "ops_manager": R + W,
        "carrier_user": R,
        "driver": R,
    },
    "shipments": {
        "owner": R + W,
        "admin": R + W,
        "dispatcher": R + W,
        "ops_manager": R,
        "carrier_user": R,
    },
    "routes": {
        "owner": R + W,
        "admin": R + W,
        "dispatcher": R + W,
        "ops_manager": R,
        "carrier_user": R,
        "driver": R,
    },
    "stops": {
        "owner": R + W,
        "admin": R + W,
        "dispatcher": R + W,
        "ops_manager": R,
        "carrier_user": R,
        "driver": R,
    },
}


@pytest.mark.parametrize("resource", sorted(EXPECTED))
@pytest.mark.parametrize("role", Role.values)
def test_role_rights(resource, role, tenant, api_client_for):
    rights = EXPECTED[resource].get(role, "")
    client = api_client_for(tenant.user(role))
    listed = client.get(f"/api/v1/{resource}/")
    assert listed.status_code == (200 if R in rights else 403), listed.content
    # An empty body: with the right it fails validation (400), without it is refused (403).
    created = client.post(f"/api/v1/{resource}/", {}, format="json")
    if resource == "memberships":  # people join by invitation: no POST for anyone (405)
        assert created.status_code == 405, created.content
    else:
        assert created.status_code == (400 if W in rights else 403), created.content


def test_carrier_user_sees_only_their_carriers_work(tenant, api_client_for):
    from tests.factories import CarrierFactory

    other = CarrierFactory(organization=tenant.organization)
    mine = RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    theirs = RouteFactory(organization=tenant.organization, carrier=other)
    stop_with_shipments(route=mine)
    stop_with_shipments(route=theirs)
    ShipmentFactory(organization=tenant.organization, carrier=other)
    client = api_client_for(tenant.user(Role.CARRIER_USER))
    assert [r["id"] for r in client.get("/api/v1/routes/").json()["results"]] == [mine.pk]
    assert {s["route"] for s in client.get("/api/v1/stops/").json()["results"]} == {mine.pk}
    carriers = client.get("/api/v1/carriers/").json()["results"]
    assert [c["id"] for c in carriers] == [tenant.carrier.pk]
    shipments = client.get("/api/v1/shipments/").json()["results"]
    assert shipments and all(s["carrier"] == tenant.carrier.pk for s in shipments)
    assert client.get(f"/api/v1/routes/{theirs.pk}/").status_code == 404


def test_driver_sees_only_routes_assigned_to_them(tenant, api_client_for):
    from carriers.models import Driver

    driver = Driver.dangerously_unscoped.get(user=tenant.user(Role.DRIVER))
    mine = RouteFactory(organization=tenant.organization, carrier=tenant.carrier, driver=driver)
    RouteFactory(organization=tenant.organization, carrier=tenant.carrier)
    client = api_client_for(tenant.user(Role.DRIVER))
    assert [r["id"] for r in client.get("/api/v1/routes/").json()["results"]] == [mine.pk]
    assert client.get("/api/v1/shipments/").status_code == 403


def test_me_describes_the_caller(tenant, api_client_for):
    body = api_client_for(tenant.user(Role.OPS_MANAGER)).get("/api/v1/me/").json()
    assert body["role"] == "ops_manager"
    assert body["organization"]["slug"] == tenant.organization.slug
    assert body["permissions"]["carriers"] == ["read", "write"]
    assert body["permissions"]["shipments"] == ["read"]


def test_person_without_membership_is_told_so(db, api_client_for):
    from tests.factories import UserFactory

    response = api_client_for(UserFactory()).get("/api/v1/me/")
    assert response.status_code == 403
    assert "not a member" in response.json()["detail"]


def test_person_in_two_organizations_keeps_a_default(tenant, other_tenant, api_client_for):
    from tests.factories import MembershipFactory

    user = tenant.user(Role.DISPATCHER)
    MembershipFactory(organization=other_tenant.organization, user=user, role=Role.OPS_MANAGER)
    # No choice made: the organization joined first (more in test_invitations.py).
    response = api_client_for(user).get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["organization"]["slug"] == "acme"
    chosen = api_client_for(user, organization_slug="globex").get("/api/v1/me/").json()
    assert chosen["role"] == "ops_manager"


def test_anonymous_gets_401_with_a_hint(db, api_client_for):
    response = api_client_for().get("/api/v1/shipments/")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert "Api-Key" in response.json()["detail"]
