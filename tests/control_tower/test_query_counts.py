"""List endpoints cost a fixed number of queries, however many rows they return."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from control_tower.models import ApiKey
from control_tower.tenancy.roles import Role
from tests.factories import (
    CarrierFactory,
    DeviceFactory,
    DriverFactory,
    HubFactory,
    MembershipFactory,
    RouteFactory,
    ShipmentFactory,
    VehicleFactory,
    stop_with_shipments,
)

pytestmark = pytest.mark.django_db

CEILING = 10  # session, user, membership, count, page, prefetches…


def _api_key(org):
    import secrets

    return ApiKey.dangerously_unscoped.create(
        organization=org,
        name="k",
        prefix=secrets.token_hex(5),
        key_hash="0" * 64,
        scopes=["hubs:read"],
    )


def _make(resource, tenant):
    org, carrier = tenant.organization, tenant.carrier
    return {
        "memberships": lambda: MembershipFactory(organization=org),
        "api-keys": lambda: _api_key(org),
        "carriers": lambda: CarrierFactory(organization=org),
        "drivers": lambda: DriverFactory(organization=org, carrier=carrier),
        "vehicles": lambda: VehicleFactory(organization=org, carrier=carrier),
        "devices": lambda: DeviceFactory(organization=org, carrier=carrier),
        "hubs": lambda: HubFactory(organization=org),
        "shipments": lambda: ShipmentFactory(organization=org, carrier=carrier),
        "routes": lambda: stop_with_shipments(
            route=RouteFactory(organization=org, carrier=carrier), count=2
        ),
        "stops": lambda: stop_with_shipments(
            route=RouteFactory(organization=org, carrier=carrier), count=3
        ),
    }[resource]


def _queries(client, path):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, {"page_size": 100})
    assert response.status_code == 200
    return len(captured), response.json()["count"]


@pytest.mark.parametrize(
    "resource",
    [
        "memberships",
        "api-keys",
        "carriers",
        "drivers",
        "vehicles",
        "devices",
        "hubs",
        "shipments",
        "routes",
        "stops",
    ],
)
def test_list_queries_do_not_grow_with_rows(
    resource, tenant, api_client_for, django_assert_max_num_queries
):
    client = api_client_for(tenant.user(Role.OWNER))
    make = _make(resource, tenant)
    for _ in range(3):
        make()
    few, count_few = _queries(client, f"/api/v1/{resource}/")
    for _ in range(15):
        make()
    with django_assert_max_num_queries(CEILING):
        many, count_many = _queries(client, f"/api/v1/{resource}/")
    assert many == few, f"{resource}: {few} queries for {count_few} rows, {many} for {count_many}"
