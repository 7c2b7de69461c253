"""The reports API refuses what it cannot answer before reading any number: bad parameters are
400s naming the parameter, roles without reports get 403, and a carrier user or another
organization asking for a carrier that is not theirs gets the same 400 as for an unknown id."""

from __future__ import annotations

import pytest

from control_tower.tenancy.roles import Role, Scope
from tests.factories import CarrierFactory

pytestmark = pytest.mark.django_db

V1 = "/api/v1/reports"
GET_REPORTS = [
    "scorecard",
    "trend",
    "failure-reasons",
    "exceptions",
    "lateness",
    "drilldown",
    "planning-history",
    "eta-accuracy",
]


def _error(response, status, field):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == "validation_error"
    assert field in body["fields"], body
    return body


@pytest.mark.parametrize("report", GET_REPORTS)
def test_bad_parameters_are_named(report, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    _error(client.get(f"{V1}/{report}/", {"from": "2026-02-30"}), 400, "from")
    _error(client.get(f"{V1}/{report}/", {"from": "2026-03-02", "to": "2026-03-01"}), 400, "from")
    _error(client.get(f"{V1}/{report}/", {"group": "planet"}), 400, "group")
    _error(client.get(f"{V1}/{report}/", {"carrier": "x"}), 400, "carrier")
    _error(client.get(f"{V1}/{report}/", {"service_type": "overnight"}), 400, "service_type")


@pytest.mark.parametrize("report", GET_REPORTS)
def test_an_unknown_download_format_is_a_400_naming_format(report, tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    body = _error(client.get(f"{V1}/{report}/", {"format": "pdf"}), 400, "format")
    assert "csv" in body["fields"]["format"][0]


def test_errors_of_a_download_request_are_json(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    response = client.get(f"{V1}/scorecard/", {"format": "xlsx", "from": "nope"})
    assert response["Content-Type"].startswith("application/json")
    _error(response, 400, "from")


def test_drilldown_needs_a_metric_and_sane_paging(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    _error(client.get(f"{V1}/drilldown/"), 400, "metric")
    _error(client.get(f"{V1}/drilldown/", {"metric": "speed"}), 400, "metric")
    _error(client.get(f"{V1}/drilldown/", {"metric": "on_time_pct", "page": "two"}), 400, "page")
    _error(
        client.get(f"{V1}/drilldown/", {"metric": "on_time_pct", "page_size": "0"}),
        400,
        "page_size",
    )


def test_trend_metric_must_be_known(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    _error(client.get(f"{V1}/trend/", {"metric": "speed"}), 400, "metric")


def test_planning_history_by_must_be_known(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OPS_MANAGER))
    _error(client.get(f"{V1}/planning-history/", {"by": "street"}), 400, "by")


@pytest.mark.parametrize("report", GET_REPORTS)
def test_drivers_and_keys_without_reports_scope_get_403(
    report, tenant, api_client_for, api_key_for
):
    for client in (
        api_client_for(tenant.user(Role.DRIVER)),
        api_client_for(key=api_key_for(tenant, scopes=[Scope.SHIPMENTS_READ])),
    ):
        response = client.get(f"{V1}/{report}/")
        assert response.status_code == 403, response.content
        assert response.json()["error"] == "permission_denied"


def test_anonymous_callers_are_refused(client):
    response = client.get(f"{V1}/scorecard/")
    assert response.status_code in (401, 403)


@pytest.mark.parametrize("report", GET_REPORTS)
def test_a_carrier_user_cannot_ask_for_another_carrier(report, tenant, api_client_for, api_key_for):
    other = CarrierFactory(organization=tenant.organization, code="rival")
    for client in (
        api_client_for(tenant.user(Role.CARRIER_USER)),
        api_client_for(key=api_key_for(tenant, carrier=tenant.carrier)),
    ):
        body = _error(client.get(f"{V1}/{report}/", {"carrier": other.pk}), 400, "carrier")
        assert str(other.pk) in body["fields"]["carrier"][0]


@pytest.mark.parametrize("report", GET_REPORTS)
def test_another_organization_cannot_name_our_ids(report, tenant, other_tenant, api_client_for):
    client = api_client_for(other_tenant.user(Role.OWNER))
    _error(client.get(f"{V1}/{report}/", {"carrier": tenant.carrier.pk}), 400, "carrier")


def test_recompute_needs_reports_write_and_valid_dates(
    tenant, api_client_for, api_key_for, django_capture_on_commit_callbacks
):
    body = {"date_from": "2026-11-01", "date_to": "2026-11-03"}
    for role in (Role.DISPATCHER, Role.CARRIER_USER, Role.DRIVER):
        response = api_client_for(tenant.user(role)).post(f"{V1}/recompute/", body)
        assert response.status_code == 403, (role, response.content)
    reader = api_client_for(key=api_key_for(tenant, scopes=[Scope.REPORTS_READ]))
    assert reader.post(f"{V1}/recompute/", body).status_code == 403
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    _error(
        ops.post(f"{V1}/recompute/", {"date_from": "2026-11-05", "date_to": "2026-11-01"}),
        400,
        "date_from",
    )
    _error(
        ops.post(f"{V1}/recompute/", {"date_from": "2025-01-01", "date_to": "2026-11-01"}),
        400,
        "date_to",
    )
    _error(ops.post(f"{V1}/recompute/", {"date_to": "2026-11-01"}), 400, "date_from")
