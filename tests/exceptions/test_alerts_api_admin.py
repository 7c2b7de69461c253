"""The admin: an organization's owner reads their alerts with the transitions inline, resolves
them through the service, and edits thresholds; another organization's alerts stay out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from exceptions.models import Alert, AlertThresholds, AlertTransition
from exceptions.services import alert_raise
from exceptions.thresholds import thresholds_for
from tests.factories import RouteFactory

pytestmark = pytest.mark.django_db


def raise_on(route, title):
    return alert_raise(
        organization_id=route.organization_id,
        kind="route_not_started",
        subject_type="route",
        subject_id=route.pk,
        severity="medium",
        started_at=timezone.now() - timedelta(minutes=25),
        title=title,
        route=route,
        carrier_id=route.carrier_id,
    )


def test_owner_reads_resolves_and_sets_thresholds(tenant, other_tenant, client):
    ours = raise_on(RouteFactory(organization=tenant.organization), "OURS-ALERT")
    theirs = raise_on(RouteFactory(organization=other_tenant.organization), "THEIRS-ALERT")
    client.force_login(tenant.user(Role.OWNER))

    listing = client.get("/admin/exceptions/alert/")
    assert listing.status_code == 200
    assert b"OURS-ALERT" in listing.content and b"THEIRS-ALERT" not in listing.content
    detail = client.get(f"/admin/exceptions/alert/{ours.pk}/change/")
    assert detail.status_code == 200 and b"rule route_not_started" in detail.content
    assert client.get(f"/admin/exceptions/alert/{theirs.pk}/change/").status_code in (302, 404)

    resolved = client.post(
        "/admin/exceptions/alert/",
        {"action": "resolve_no_action", "_selected_action": [ours.pk, theirs.pk]},
    )
    assert resolved.status_code == 302
    with organization_scope(tenant.organization):
        alert = Alert.objects.get(pk=ours.pk)
        assert alert.state == "resolved" and alert.resolution_code == "no_action_needed"
        assert AlertTransition.objects.filter(alert=alert, to_state="resolved").count() == 1
    with organization_scope(other_tenant.organization):
        assert Alert.objects.get(pk=theirs.pk).state == "open"

    added = client.post(
        "/admin/exceptions/alertthresholds/add/", {"stalled_min": "7", "carrier": ""}
    )
    assert added.status_code == 302, added.content[:2000]
    with organization_scope(tenant.organization):
        assert AlertThresholds.objects.get().stalled_min == 7
    assert thresholds_for(tenant.organization.pk, None).stalled_min == 7
