"""A route's rules live in tracking/services/routes.py: `route_create` / `route_update` for one
route, `route_plan_problems` for a day's plan (both the API and the solver's plans)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from tests.factories import CarrierFactory, DriverFactory, HubFactory, RouteFactory
from tracking.errors import InvalidInput
from tracking.models import Route
from tracking.services.routes import route_create, route_plan_create, route_update

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 24)
T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def actor(tenant):
    return actor_for_membership(tenant.members[Role.DISPATCHER])


def test_route_create_and_update_keep_the_rules(tenant, actor, scoped):
    hub = HubFactory(organization=tenant.organization)
    base = {"date": DAY, "code": "R1", "hub": hub, "carrier": tenant.carrier}
    route = route_create(actor=actor, data={**base, "planned_start": T})
    foreign_crew = DriverFactory(
        organization=tenant.organization, carrier=CarrierFactory(organization=tenant.organization)
    )
    for data, field in (
        ({**base, "code": "R2", "driver": foreign_crew}, "driver"),
        ({**base, "code": "R2", "planned_start": T, "planned_end": T}, "planned_end"),
        (base, "code"),
    ):
        with pytest.raises(InvalidInput) as refused:
            route_create(actor=actor, data=data)
        assert field in refused.value.fields
    with pytest.raises(InvalidInput) as refused:
        route_update(route=route, actor=actor, data={"planned_end": T})  # start is stored
    assert "planned_end" in refused.value.fields
    RouteFactory(organization=tenant.organization, carrier=tenant.carrier, date=DAY, code="R3")
    with pytest.raises(InvalidInput, match="already exists"):
        route_update(route=route, actor=actor, data={"code": "R3"})
    assert route_update(route=route, actor=actor, data={"code": "R4"}).code == "R4"
    assert list(Route.objects.filter(date=DAY).order_by("code").values_list("code", flat=True)) == [
        "R3",
        "R4",
    ]


def test_a_plan_with_a_reversed_window_or_another_tenants_hub_is_refused_by_index(
    tenant, other_tenant, actor, scoped
):
    hub = HubFactory(organization=tenant.organization)
    foreign_hub = HubFactory.build(organization=other_tenant.organization, pk=10**6)
    stop = {"location": hub.location, "window_start": T, "window_end": T}
    plan = [
        {"code": "A", "hub": hub, "carrier": tenant.carrier, "stops": []},
        {"code": "B", "hub": foreign_hub, "carrier": tenant.carrier, "stops": [stop]},
    ]
    with pytest.raises(InvalidInput) as refused:
        route_plan_create(actor=actor, date=DAY, routes=plan)
    errors = refused.value.fields["routes"]
    assert set(errors) == {"1"} and {"hub", "stops.0"} <= set(errors["1"])
    assert not Route.objects.exists()
