"""Tracking links: token security, expiry, revocation, one answer for every miss, the lookup."""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect

import pytest
from django.utils import timezone

from control_tower.errors import Conflict, TooManyAttempts
from control_tower.ratelimit import ratelimit_reset
from control_tower.tenancy.scope import organization_scope
from tests.factories import ShipmentFactory
from tracking.models import LinkSource, Shipment, TrackingLink
from tracking.services import shipment_transition
from tracking.services import tracking_links as links

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits():
    ratelimit_reset()
    yield
    ratelimit_reset()


@pytest.fixture
def shipment(scoped):
    return ShipmentFactory(
        organization=scoped, postal_code="1700000", recipient_phone="+56 9 8765 4321"
    )


def test_the_token_has_at_least_128_random_bits_and_only_its_hash_is_stored(shipment):
    link, raw = links.link_issue(shipment, actor=None, source=LinkSource.CREATED)
    assert links.TOKEN_BYTES * 8 >= 128
    assert len(raw) == 32 and links.TOKEN_RE.match(raw)
    stored = TrackingLink.dangerously_unscoped.get(pk=link.pk)
    assert stored.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    # The raw token is in no column of the row.
    assert all(raw not in str(getattr(stored, f.attname)) for f in TrackingLink._meta.fields)
    other_link, other_raw = links.link_issue(shipment, actor=None)
    assert other_raw != raw and other_link.token_hash != link.token_hash
    # Tokens come from `secrets` and are compared with hmac.compare_digest.
    source = inspect.getsource(links)
    assert "secrets.token_urlsafe(TOKEN_BYTES)" in source
    assert "hmac.compare_digest(link.token_hash, digest)" in source


def test_resolve_works_without_a_scope_and_loads_shipment_and_organization(
    shipment, django_assert_num_queries
):
    link, raw = links.link_issue(shipment, actor=None)
    with organization_scope(shipment.organization):
        pass
    # Outside any scope (the page has only the token).
    with django_assert_num_queries(1):
        found = links.link_resolve(raw)
        assert found.pk == link.pk
        assert found.shipment.reference == shipment.reference
        assert found.organization.slug == shipment.organization.slug


def test_unknown_malformed_expired_and_revoked_answer_the_same(shipment):
    now = timezone.now()
    revoked, revoked_raw = links.link_issue(shipment, actor=None)
    links.link_revoke(revoked, actor="support")
    expired, expired_raw = links.link_issue(shipment, actor=None)
    TrackingLink.objects.filter(pk=expired.pk).update(expires_at=now - dt.timedelta(seconds=1))
    answers = {
        "unknown": links.link_resolve("A" * 32),
        "malformed": links.link_resolve("../../etc/passwd"),
        "empty": links.link_resolve(""),
        "revoked": links.link_resolve(revoked_raw),
        "expired": links.link_resolve(expired_raw),
    }
    assert answers == dict.fromkeys(answers)
    revoked.refresh_from_db()
    assert revoked.revoked_by == "support"


def test_a_disabled_organization_disables_its_links(shipment):
    _link, raw = links.link_issue(shipment, actor=None)
    type(shipment.organization).objects.filter(pk=shipment.organization.pk).update(is_active=False)
    assert links.link_resolve(raw) is None


def test_links_expire_n_days_after_the_final_status(shipment):
    organization = shipment.organization
    organization.tracking_link_days = 3
    organization.save()
    link, raw = links.link_issue(shipment, actor=None)
    assert link.expires_at is None
    shipment_transition(shipment=shipment, to_status="out_for_delivery", actor=None)
    link.refresh_from_db()
    assert link.expires_at is None  # still moving
    delivered_at = timezone.now()
    shipment_transition(shipment=shipment, to_status="delivered", actor=None, at=delivered_at)
    link.refresh_from_db()
    assert link.expires_at == delivered_at + dt.timedelta(days=3)
    assert links.link_resolve(raw, now=delivered_at + dt.timedelta(days=2)) is not None
    assert links.link_resolve(raw, now=delivered_at + dt.timedelta(days=3, seconds=1)) is None
    # A link issued after delivery gets the same end; past it, none is issued.
    later, _ = links.link_issue(Shipment.objects.get(pk=shipment.pk), actor=None)
    assert later.expires_at == delivered_at + dt.timedelta(days=3)
    Shipment.objects.filter(pk=shipment.pk).update(
        status_changed_at=timezone.now() - dt.timedelta(days=4)
    )
    with pytest.raises(Conflict):
        links.link_issue(Shipment.objects.get(pk=shipment.pk), actor=None)


def test_a_shipment_keeps_at_most_max_active_links(shipment):
    issued = [links.link_issue(shipment, actor=None)[1] for _ in range(links.MAX_ACTIVE_LINKS + 2)]
    working = [raw for raw in issued if links.link_resolve(raw) is not None]
    assert working == issued[2:]  # the two oldest were revoked


def test_opened_is_recorded_at_most_once_a_minute(shipment):
    link, raw = links.link_issue(shipment, actor=None)
    now = timezone.now()
    links.link_mark_opened(links.link_resolve(raw), now=now)
    links.link_mark_opened(links.link_resolve(raw), now=now + dt.timedelta(seconds=30))
    link.refresh_from_db()
    assert link.last_opened_at == now
    links.link_mark_opened(links.link_resolve(raw), now=now + dt.timedelta(seconds=61))
    link.refresh_from_db()
    assert link.last_opened_at == now + dt.timedelta(seconds=61)


def test_tracking_url_prefers_the_organizations_host(shipment, settings, rf):
    organization = shipment.organization
    settings.PUBLIC_BASE_URL = "https://ct.example.org"
    assert links.tracking_url(organization, "tok") == "https://ct.example.org/t/tok"
    organization.tracking_host = "track.acme.cl"
    assert links.tracking_url(organization, "tok") == "https://track.acme.cl/t/tok"
    organization.tracking_host = ""
    settings.PUBLIC_BASE_URL = ""
    request = rf.get("/", HTTP_HOST="127.0.0.1:8000")
    assert links.tracking_url(organization, "tok", request=request) == "http://127.0.0.1:8000/t/tok"


# --- the lookup ---------------------------------------------------------------------------


def test_lookup_by_postcode_or_phone_digits_issues_a_new_link(shipment):
    organization = shipment.organization
    first = links.link_lookup(organization, shipment.reference.lower(), "1700 000")
    assert first is not None
    link, raw = first
    assert link.source == LinkSource.LOOKUP and link.shipment_id == shipment.pk
    assert links.link_resolve(raw).pk == link.pk
    second = links.link_lookup(organization, shipment.reference, "4321")
    assert second is not None and second[1] != raw


def test_lookup_misses_all_answer_none_and_issue_nothing(other_org, shipment):
    organization = shipment.organization
    before = TrackingLink.dangerously_unscoped.count()
    misses = [
        links.link_lookup(organization, "NO-SUCH-REF", "1700000"),
        links.link_lookup(organization, shipment.reference, "9999999"),
        links.link_lookup(organization, shipment.reference, "1234"),
        links.link_lookup(organization, shipment.reference, ""),
        links.link_lookup(other_org, shipment.reference, "1700000"),  # another tenant's form
    ]
    assert misses == [None] * 5
    assert TrackingLink.dangerously_unscoped.count() == before


def test_lookup_is_rate_limited_per_reference_whoever_asks(shipment):
    organization = shipment.organization
    for n in range(links.LOOKUP_PER_REFERENCE):
        assert (
            links.link_lookup(organization, "NO-SUCH", "000" + str(n), client_ip=f"10.0.0.{n}")
            is None
        )
    with pytest.raises(TooManyAttempts):
        links.link_lookup(organization, "NO-SUCH", "1700000", client_ip="10.0.0.99")
    # Another reference is still answered.
    assert links.link_lookup(organization, shipment.reference, "1700000") is not None


def test_lookup_is_rate_limited_per_ip(shipment, settings):
    settings.TRACKING_LOOKUPS_PER_IP = 3
    organization = shipment.organization
    for n in range(3):
        links.link_lookup(organization, f"REF-X{n}", "0000", client_ip="192.0.2.7")
    with pytest.raises(TooManyAttempts):
        links.link_lookup(organization, shipment.reference, "1700000", client_ip="192.0.2.7")
    assert links.link_lookup(organization, shipment.reference, "1700000", client_ip="192.0.2.8")


def test_page_views_are_limited_per_token_and_per_ip(shipment, settings):
    settings.TRACKING_VIEWS_PER_TOKEN = 3
    settings.TRACKING_VIEWS_PER_IP = 5
    _link, raw = links.link_issue(shipment, actor=None)
    assert [links.link_view_limited(raw, client_ip="192.0.2.1") for _ in range(4)] == [
        False,
        False,
        False,
        True,
    ]
    # Another token from the same address: counted per IP (5th and 6th hit of this IP).
    other = "B" * 32
    assert links.link_view_limited(other, client_ip="192.0.2.1") is False
    assert links.link_view_limited(other, client_ip="192.0.2.1") is True
    # The first token from another address is still over its own limit.
    assert links.link_view_limited(raw, client_ip="192.0.2.2") is True
