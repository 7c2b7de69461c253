"""Report parameters: one parser for the API, the pages and the exports."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.http import QueryDict

from carriers.sla.query import MAX_REPORT_DAYS, local_today, query_string, report_query
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import CarrierFactory
from tracking.errors import InvalidInput

pytestmark = pytest.mark.django_db


def _actor(tenant, role=Role.OPS_MANAGER):
    return actor_for_membership(tenant.members[role])


def test_defaults_are_the_last_seven_complete_days(tenant):
    actor = _actor(tenant)
    with organization_scope(tenant.organization):
        query = report_query(actor=actor, params=QueryDict(""))
    yesterday = local_today(actor) - timedelta(days=1)
    assert (query.filters.date_from, query.filters.date_to) == (
        yesterday - timedelta(days=6),
        yesterday,
    )
    assert query.group == "carrier" and query.compare is True and query.metric is None


def test_round_trip_through_the_query_string(tenant):
    actor = _actor(tenant)
    with organization_scope(tenant.organization):
        other = CarrierFactory(organization=tenant.organization, code="second")
        params = QueryDict(
            f"from=2026-11-01&to=2026-11-30&carrier={tenant.carrier.pk},{other.pk}"
            "&service_type=same_day&group=day&compare=false&metric=on_time_pct"
        )
        query = report_query(actor=actor, params=params)
        again = report_query(actor=actor, params=QueryDict(query_string(query)))
    assert again == query
    assert query.filters.date_from == date(2026, 11, 1)
    assert query.filters.carrier_ids == tuple(sorted((tenant.carrier.pk, other.pk)))
    assert query.filters.previous().date_to == date(2026, 10, 31)
    assert query.filters.previous().days == 30


def test_every_bad_parameter_is_named(tenant):
    actor = _actor(tenant)
    with organization_scope(tenant.organization), pytest.raises(InvalidInput) as caught:
        report_query(
            actor=actor,
            params=QueryDict("from=2026-13-01&carrier=abc&group=planet&metric=speed&compare=maybe"),
        )
    assert set(caught.value.fields) == {"from", "carrier", "group", "metric", "compare"}


def test_periods_are_bounded_and_ordered(tenant):
    actor = _actor(tenant)
    with organization_scope(tenant.organization):
        with pytest.raises(InvalidInput) as backwards:
            report_query(actor=actor, params=QueryDict("from=2026-11-10&to=2026-11-01"))
        too_long = date(2026, 1, 1) + timedelta(days=MAX_REPORT_DAYS)
        with pytest.raises(InvalidInput) as long:
            report_query(actor=actor, params=QueryDict(f"from=2026-01-01&to={too_long}"))
    assert "from" in backwards.value.fields
    assert "to" in long.value.fields


def test_a_carrier_user_cannot_ask_for_another_carrier(tenant, other_tenant):
    actor = _actor(tenant, Role.CARRIER_USER)
    with organization_scope(tenant.organization):
        sibling = CarrierFactory(organization=tenant.organization, code="sibling")
        with pytest.raises(InvalidInput) as caught:
            report_query(actor=actor, params=QueryDict(f"carrier={sibling.pk}"))
        own = report_query(actor=actor, params=QueryDict(f"carrier={tenant.carrier.pk}"))
        with pytest.raises(InvalidInput):
            report_query(actor=actor, params=QueryDict(f"carrier={other_tenant.carrier.pk}"))
    assert "carrier" in caught.value.fields
    assert own.filters.carrier_ids == (tenant.carrier.pk,)
