"""Tracking links for notification messages: the raw token is derived (HMAC of a stored nonce
under a key derived from SECRET_KEY), never stored; revoking works as for any link."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from control_tower.tenancy.scope import organization_scope
from tests.factories import ShipmentFactory
from tracking.models import LinkSource, TrackingLink
from tracking.services.tracking_links import (
    MAX_ACTIVE_LINKS,
    derived_token,
    link_issue,
    link_resolve,
    link_revoke,
    notification_link_url,
    token_hash,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipment(tenant):
    return ShipmentFactory(organization=tenant.organization, carrier=tenant.carrier)


def _token(url: str) -> str:
    return url.rsplit("/t/", 1)[1]


def test_the_same_link_serves_every_message_and_resolves(shipment, settings):
    settings.PUBLIC_BASE_URL = "https://ct.example.com"
    first = notification_link_url(shipment)
    second = notification_link_url(shipment)
    assert first == second and first.startswith("https://ct.example.com/t/")
    with organization_scope(shipment.organization):
        (link,) = TrackingLink.objects.filter(shipment=shipment)
    assert link.source == LinkSource.NOTIFICATION and link.nonce
    assert link_resolve(_token(first)).pk == link.pk
    # Nothing stored is the token: only its hash and the nonce.
    assert _token(first) not in (link.nonce, link.token_hash)
    assert link.token_hash == token_hash(_token(first))


def test_the_token_needs_the_secret_key(shipment):
    url = notification_link_url(shipment)
    with organization_scope(shipment.organization):
        link = TrackingLink.objects.get(shipment=shipment)
    with override_settings(SECRET_KEY="another-secret-key-for-a-dump-reader-0123456789"):
        assert derived_token(link.nonce) != _token(url)


def test_revoking_gives_a_new_link_next_time(shipment):
    first = notification_link_url(shipment)
    with organization_scope(shipment.organization):
        link = TrackingLink.objects.get(shipment=shipment)
    link_revoke(link, actor="test")
    assert link_resolve(_token(first)) is None
    second = notification_link_url(shipment)
    assert second != first and link_resolve(_token(second)) is not None


def test_the_active_link_limit_still_applies(shipment):
    notification_link_url(shipment)
    for _ in range(MAX_ACTIVE_LINKS):
        link_issue(shipment, actor="test")
    with organization_scope(shipment.organization):
        usable = [
            link for link in TrackingLink.objects.filter(shipment=shipment) if link.is_usable()
        ]
    assert len(usable) == MAX_ACTIVE_LINKS
    # The oldest (the notification link) was revoked: the next message derives a new one.
    url = notification_link_url(shipment)
    assert link_resolve(_token(url)).source == LinkSource.NOTIFICATION


def test_a_shipment_whose_tracking_ended_gets_no_link(shipment):
    shipment.status = "delivered"
    shipment.status_changed_at = timezone.now() - timedelta(days=400)
    shipment.save()
    assert notification_link_url(shipment) == ""


def test_after_a_secret_key_rotation_a_new_link_is_issued(shipment):
    before = notification_link_url(shipment)
    with override_settings(SECRET_KEY="a-rotated-secret-key-0123456789abcdef0123456789"):
        after = notification_link_url(shipment)
        assert after != before
        assert link_resolve(_token(after)) is not None
