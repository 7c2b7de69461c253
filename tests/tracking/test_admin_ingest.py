"""Admin pages for ingest evidence: scoped to the organization, and read-only."""

import pytest

from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import ShipmentFactory
from tracking.models import CustodyEntry
from tracking.services import shipment_transition

pytestmark = pytest.mark.django_db


def moved(tenant, reference):
    shipment = ShipmentFactory(
        organization=tenant.organization, carrier=tenant.carrier, reference=reference
    )
    with organization_scope(tenant.organization):
        shipment_transition(
            shipment=shipment,
            to_status="at_hub",
            actor=actor_for_membership(tenant.members[Role.DISPATCHER]),
        )
    return shipment


def test_custody_log_is_scoped_and_read_only(tenant, other_tenant, client):
    ours = moved(tenant, "OURS-9")
    moved(other_tenant, "THEIRS-9")
    client.force_login(tenant.user(Role.OWNER))
    listing = client.get("/admin/tracking/custodyentry/")
    assert listing.status_code == 200
    assert b"OURS-9" in listing.content and b"THEIRS-9" not in listing.content
    entry = CustodyEntry.dangerously_unscoped.get(shipment=ours)
    page = client.get(f"/admin/tracking/custodyentry/{entry.pk}/change/")
    assert page.status_code == 200 and b"Save" not in page.content
    assert client.post(f"/admin/tracking/custodyentry/{entry.pk}/delete/").status_code == 403
    for path in (
        "/admin/tracking/scan/",
        "/admin/tracking/deviceposition/",
        "/admin/tracking/proofofdelivery/",
    ):
        assert client.get(path).status_code == 200
