"""Signing a phone in as a driver: a device token bound to the driver, revocable like any
device; wrong passwords, people who do not drive and other tenants get clear refusals."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from carriers.models import Device
from carriers.services import device_revoke
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.driver_app.conftest import INSTALL_ID, SIGN_IN, TODAY, phone, sign_in
from tests.factories import PASSWORD, DriverFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_sign_in_issues_a_device_token_bound_to_the_driver(tenant):
    response = sign_in(tenant)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["token"].startswith("ctd_")
    device = Device.dangerously_unscoped.get(pk=body["device"]["id"])
    assert device.kind == "driver_app"
    assert device.external_id == INSTALL_ID
    assert device.name == "Pixel 7"
    assert device.carrier_id == tenant.carrier.pk
    assert device.driver.user == tenant.user(Role.DRIVER)
    assert body["driver"] == {"id": device.driver_id, "name": device.driver.name}
    assert body["organization"]["slug"] == tenant.organization.slug
    # The token works for the session check, and the phone reports through the usual ingest.
    assert phone(body["token"]).get(SIGN_IN).json()["device"]["id"] == device.pk


def test_signing_in_again_from_the_same_installation_reuses_the_device(tenant):
    first = sign_in(tenant).json()
    second = sign_in(tenant).json()
    assert second["device"]["id"] == first["device"]["id"]
    assert phone(first["token"]).get(SIGN_IN).status_code == 401  # the old token is gone
    assert phone(second["token"]).get(SIGN_IN).status_code == 200
    other = sign_in(tenant, install_id="another-install-0001").json()
    assert other["device"]["id"] != first["device"]["id"]


def test_a_revoked_phone_is_refused_everywhere(tenant):
    body = sign_in(tenant).json()
    device = Device.dangerously_unscoped.get(pk=body["device"]["id"])
    with organization_scope(tenant.organization):
        device_revoke(device=device)
    client = phone(body["token"])
    for call in (client.get(SIGN_IN), client.get(TODAY)):
        assert call.status_code == 401
        assert call.json()["detail"] == "Unknown or revoked device token."
    pings = client.post(
        "/api/v1/ingest/pings",
        [{"time": "2026-12-06T12:00:00Z", "lat": -29.9, "lon": -71.25}],
        format="json",
    )
    assert pings.status_code == 401


def test_sign_out_revokes_the_token(tenant):
    body = sign_in(tenant).json()
    assert phone(body["token"]).delete(SIGN_IN).status_code == 204
    assert phone(body["token"]).get(TODAY).status_code == 401
    assert Device.dangerously_unscoped.get(pk=body["device"]["id"]).revoked_at is not None


def test_a_dispatcher_revokes_the_phone_through_the_devices_api(tenant):
    body = sign_in(tenant).json()
    dispatcher = APIClient()
    dispatcher.force_login(tenant.user(Role.DISPATCHER))
    assert dispatcher.delete(f"/api/v1/devices/{body['device']['id']}/").status_code == 204
    assert phone(body["token"]).get(TODAY).status_code == 401


@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"password": "wrong"}, 401, "invalid_credentials"),
        ({"email": "nobody@example.com"}, 401, "invalid_credentials"),
        ({"install_id": "x"}, 400, "validation_error"),
        ({"email": ""}, 400, "validation_error"),
    ],
)
def test_bad_sign_ins_say_what_is_wrong_and_store_nothing(tenant, change, status, code):
    response = sign_in(tenant, **change)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert not Device.dangerously_unscoped.exists()


def test_people_who_do_not_drive_cannot_sign_in(tenant):
    response = APIClient().post(
        SIGN_IN,
        {
            "email": f"dispatcher@{tenant.organization.slug}.example.com",
            "password": PASSWORD,
            "install_id": INSTALL_ID,
        },
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["error"] == "not_a_driver"


def test_a_driver_membership_without_a_driver_record_is_refused(tenant):
    membership = MembershipFactory(
        organization=tenant.organization, role=Role.DRIVER, user__username="new@acme.example.com"
    )
    response = APIClient().post(
        SIGN_IN,
        {"email": membership.user.email, "password": PASSWORD, "install_id": INSTALL_ID},
        format="json",
    )
    assert response.status_code == 403
    assert "driver profile" in response.json()["detail"]


def test_a_person_driving_for_two_organizations_chooses_one(tenant, other_tenant):
    user = tenant.user(Role.DRIVER)
    MembershipFactory(organization=other_tenant.organization, role=Role.DRIVER, user=user)
    DriverFactory(organization=other_tenant.organization, carrier=other_tenant.carrier)
    ambiguous = sign_in(tenant)
    assert ambiguous.status_code == 400
    assert ambiguous.json()["error"] == "choose_organization"
    chosen = sign_in(tenant, organization=tenant.organization.slug)
    assert chosen.status_code == 201
    assert chosen.json()["organization"]["slug"] == tenant.organization.slug


def test_repeated_wrong_passwords_are_throttled(tenant):
    codes = [sign_in(tenant, password=f"wrong-{n}").status_code for n in range(10)]
    assert codes == [401] * 10
    locked = sign_in(tenant)
    assert locked.status_code == 429
    assert locked.json()["error"] == "too_many_attempts"


def test_other_device_kinds_cannot_use_the_driver_endpoints(tenant, device_client_for):
    from tests.factories import make_device

    _device, token = make_device(organization=tenant.organization, carrier=tenant.carrier)
    # A phone registered by a dispatcher without a driver is a tracker, not a driver app.
    response = device_client_for(token).get(TODAY)
    assert response.status_code == 403
    assert response.json()["error"] == "not_a_driver_app"
