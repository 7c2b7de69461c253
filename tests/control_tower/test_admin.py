"""The admin is tenant-scoped for organization admins and open to superusers."""

import pytest

from control_tower.tenancy.roles import Role
from tests.factories import PASSWORD, ShipmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipments(tenant, other_tenant):
    ours = ShipmentFactory(organization=tenant.organization, reference="OURS-1")
    theirs = ShipmentFactory(organization=other_tenant.organization, reference="THEIRS-1")
    return ours, theirs


def test_organization_owner_sees_only_their_rows(tenant, shipments, client):
    ours, theirs = shipments
    client.force_login(tenant.user(Role.OWNER))
    listing = client.get("/admin/tracking/shipment/")
    assert listing.status_code == 200
    assert b"OURS-1" in listing.content and b"THEIRS-1" not in listing.content
    assert client.get(f"/admin/tracking/shipment/{theirs.pk}/change/").status_code in (302, 404)
    assert client.get(f"/admin/tracking/shipment/{ours.pk}/change/").status_code == 200


def test_owner_adds_a_carrier_in_their_organization(tenant, client):
    client.force_login(tenant.user(Role.OWNER))
    response = client.post(
        "/admin/carriers/carrier/add/",
        {
            "code": "new-co",
            "name": "New Co",
            "kind": "gig",
            "is_active": "on",
            "sla_on_time_target_pct": "95",
            "sla_first_attempt_target_pct": "90",
            "sla_grace_minutes": "0",
            "sla_max_attempts": "3",
            "sla_scan_compliance_target_pct": "98",
            "sla_tracking_coverage_target_pct": "95",
            # The policy targets the scorecards judge by (carriers/models.py SLA_POLICY_FIELDS).
            "sla_pod_compliance_target_pct": "98",
            "sla_required_scans": "out_for_delivery,delivered",
            "sla_p90_lateness_target_min": "30",
            "sla_eta_mae_target_min": "15",
            "sla_exceptions_per_100_target": "10",
            "sla_rating_target": "4.5",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    from carriers.models import Carrier

    created = Carrier.dangerously_unscoped.get(code="new-co")
    assert created.organization_id == tenant.organization.pk
    assert created.sla_required_scans == ["out_for_delivery", "delivered"]


def test_the_carrier_admin_refuses_unknown_required_scans(tenant, client):
    client.force_login(tenant.user(Role.OWNER))
    carrier = tenant.carrier
    page = client.get(f"/admin/carriers/carrier/{carrier.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {
        name: form[name].value() if not isinstance(form[name].value(), bool) else "on"
        for name in form.fields
        if form[name].value() not in (None, False)
    }
    data["sla_required_scans"] = "out_for_delivery,teleported,out_for_delivery"
    response = client.post(f"/admin/carriers/carrier/{carrier.pk}/change/", data)
    assert response.status_code == 200
    assert b"Unknown scan type(s): teleported" in response.content
    assert b"repeated: out_for_delivery" in response.content
    carrier.refresh_from_db()
    assert carrier.sla_required_scans == ["out_for_delivery", "delivered"]


def test_foreign_key_choices_are_scoped(tenant, other_tenant, client):
    client.force_login(tenant.user(Role.OWNER))
    page = client.get("/admin/carriers/driver/add/")
    assert tenant.carrier.name.encode() in page.content
    assert other_tenant.carrier.name.encode() not in page.content


def test_dispatcher_is_not_let_into_the_admin(tenant, client):
    client.force_login(tenant.user(Role.DISPATCHER))
    response = client.get("/admin/tracking/shipment/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_owner_logs_in_through_the_admin_login_form(tenant, client):
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": tenant.user(Role.OWNER).username, "password": PASSWORD},
    )
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_superuser_sees_every_organization(tenant, shipments, client):
    root = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(root)
    listing = client.get("/admin/tracking/shipment/")
    assert b"OURS-1" in listing.content and b"THEIRS-1" in listing.content
    assert client.get("/admin/tracking/shipment/add/").status_code == 403  # pick an org first
