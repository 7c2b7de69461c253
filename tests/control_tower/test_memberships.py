import pytest
from django.contrib.auth import get_user_model

from control_tower.models import Membership
from control_tower.tenancy.roles import Role

pytestmark = pytest.mark.django_db


# People join by invitation (tests/control_tower/test_invitations.py): the former "add a person
# by e-mail" tests (new account, weak password, missing carrier, already a member) live there.


def test_only_an_owner_makes_owners(tenant, api_client_for):
    admin = api_client_for(tenant.user(Role.ADMIN))
    member = tenant.members[Role.DISPATCHER]
    response = admin.patch(f"/api/v1/memberships/{member.pk}/", {"role": "owner"}, format="json")
    assert response.status_code == 403
    owner = api_client_for(tenant.user(Role.OWNER))
    response = owner.patch(f"/api/v1/memberships/{member.pk}/", {"role": "owner"}, format="json")
    assert response.status_code == 200 and response.json()["role"] == "owner"


def test_the_last_owner_cannot_leave_or_be_demoted(tenant, api_client_for):
    owner_membership = tenant.members[Role.OWNER]
    owner = api_client_for(owner_membership.user)
    demote = owner.patch(
        f"/api/v1/memberships/{owner_membership.pk}/", {"role": "admin"}, format="json"
    )
    assert demote.status_code == 400 and demote.json()["error"] == "last_owner"
    remove = owner.delete(f"/api/v1/memberships/{owner_membership.pk}/")
    assert remove.status_code == 400
    assert Membership.dangerously_unscoped.filter(pk=owner_membership.pk).exists()


def test_role_change_to_carrier_user_binds_the_carrier(tenant, api_client_for):
    owner = api_client_for(tenant.user(Role.OWNER))
    member = tenant.members[Role.DISPATCHER]
    response = owner.patch(
        f"/api/v1/memberships/{member.pk}/",
        {"role": "carrier_user", "carrier": tenant.carrier.pk},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["carrier"] == tenant.carrier.pk
    back = owner.patch(f"/api/v1/memberships/{member.pk}/", {"role": "dispatcher"}, format="json")
    assert back.json()["carrier"] is None


def test_removing_a_member_keeps_the_person(tenant, api_client_for):
    owner = api_client_for(tenant.user(Role.OWNER))
    member = tenant.members[Role.OPS_MANAGER]
    assert owner.delete(f"/api/v1/memberships/{member.pk}/").status_code == 204
    assert get_user_model().objects.filter(pk=member.user_id).exists()
    assert api_client_for(member.user).get("/api/v1/me/").status_code == 403


def test_organization_settings(tenant, api_client_for):
    owner = api_client_for(tenant.user(Role.OWNER))
    response = owner.patch(
        "/api/v1/organization/",
        {"time_zone": "Mars/Olympus", "primary_color": "red"},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"time_zone", "primary_color"}
    response = owner.patch(
        "/api/v1/organization/",
        {"time_zone": "Europe/Paris", "primary_color": "#112233", "slug": "hijack"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["slug"] == tenant.organization.slug  # read-only
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    assert dispatcher.get("/api/v1/organization/").json()["time_zone"] == "Europe/Paris"
    assert dispatcher.patch("/api/v1/organization/", {"name": "x"}).status_code == 403


def test_ingest_settings_of_the_organization(tenant, api_client_for):
    owner = api_client_for(tenant.user(Role.OWNER))
    response = owner.patch(
        "/api/v1/organization/", {"ping_retention_days": 0, "pod_geofence_m": -5}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"ping_retention_days", "pod_geofence_m"}
    response = owner.patch(
        "/api/v1/organization/", {"ping_retention_days": 90, "pod_geofence_m": 250}, format="json"
    )
    assert response.status_code == 200
    tenant.organization.refresh_from_db()
    assert (tenant.organization.ping_retention_days, tenant.organization.pod_geofence_m) == (
        90,
        250,
    )
