"""`manage.py notifications_demo`: the demo organization's policy, idempotent."""

from __future__ import annotations

from datetime import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from control_tower.tenancy.scope import organization_scope
from notifications.policy import settings_for

pytestmark = pytest.mark.django_db


def test_quiet_hours_off_and_a_sender_for_the_demo_only(tenant, other_tenant):
    org = tenant.organization
    out = StringIO()
    call_command("notifications_demo", "--org", org.slug, stdout=out)
    call_command("notifications_demo", "--org", org.slug, stdout=out)  # idempotent
    with organization_scope(org):
        policy = settings_for(org)
        assert policy.quiet_hours_start == policy.quiet_hours_end == time(0, 0)
        assert policy.sender_name == org.name
    with organization_scope(other_tenant.organization):
        assert settings_for(other_tenant.organization).quiet_hours_start == time(21, 0)
    assert "quiet hours off" in out.getvalue()


def test_an_unknown_organization_is_an_error():
    with pytest.raises(CommandError, match="No organization"):
        call_command("notifications_demo", "--org", "nope")
