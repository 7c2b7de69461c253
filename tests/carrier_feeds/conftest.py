"""Fixtures of the carrier feed tests: a feed per adapter, clients for a carrier-bound key,
recorded payloads (tests/fixtures/carrier_feeds/)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from carriers.feeds import services
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import ShipmentFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "carrier_feeds"
# Before every recorded event: a late event is late against the shipment, not against the clock.
LONG_AGO = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def recorded(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def make_feed(tenant):
    def make(adapter="native", config=None, carrier=None, name=None, tenant_=None):
        t = tenant_ or tenant
        owner = actor_for_membership(t.members[Role.OWNER])
        with organization_scope(t.organization):
            return services.feed_create(
                actor=owner,
                carrier=carrier or t.carrier,
                name=name or f"{adapter} feed",
                adapter=adapter,
                config=config or {},
            )

    return make


@pytest.fixture
def shipment_of(tenant):
    def make(barcode, carrier=None, t=None, **fields):
        t = t or tenant
        return ShipmentFactory(
            organization=t.organization,
            carrier=carrier or t.carrier,
            barcode=barcode,
            reference=fields.pop("reference", f"ORD-{barcode}"),
            status_changed_at=LONG_AGO,
            **fields,
        )

    return make


@pytest.fixture
def carrier_client(tenant, api_client_for, api_key_for):
    """A client with a key bound to the tenant's carrier and only `tracking:write`."""
    return api_client_for(
        key=api_key_for(tenant, scopes=["tracking:write"], carrier=tenant.carrier)
    )


def events_url(feed) -> str:
    return f"/api/v1/carrier-feeds/{feed.pk}/events/"
