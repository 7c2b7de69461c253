"""The admin lists and revokes tracking links of the organization only, and shows no token."""

import pytest

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import ShipmentFactory
from tracking.models import TrackingLink
from tracking.services.tracking_links import link_issue, link_resolve

pytestmark = pytest.mark.django_db


def test_owner_lists_and_revokes_their_links_never_seeing_a_token(tenant, other_tenant, client):
    with organization_scope(tenant.organization):
        ours = ShipmentFactory(organization=tenant.organization, reference="OURS-1")
        link, raw = link_issue(ours, actor=None)
    with organization_scope(other_tenant.organization):
        theirs = ShipmentFactory(organization=other_tenant.organization, reference="THEIRS-1")
        their_link, their_raw = link_issue(theirs, actor=None)
    client.force_login(tenant.user(Role.OWNER))
    listing = client.get("/admin/tracking/trackinglink/")
    assert listing.status_code == 200
    assert b"OURS-1" in listing.content and b"THEIRS-1" not in listing.content
    detail = client.get(f"/admin/tracking/trackinglink/{link.pk}/change/")
    assert detail.status_code == 200
    for page in (listing, detail):
        assert raw.encode() not in page.content
        assert link.token_hash.encode() not in page.content
    response = client.post(
        "/admin/tracking/trackinglink/",
        {"action": "revoke", "_selected_action": [link.pk, their_link.pk]},
    )
    assert response.status_code == 302
    assert link_resolve(raw) is None
    assert link_resolve(their_raw) is not None  # not in the owner's queryset: untouched
    revoked = TrackingLink.dangerously_unscoped.get(pk=link.pk)
    assert revoked.revoked_by.startswith("admin ")
