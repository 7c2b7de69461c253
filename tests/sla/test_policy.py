"""The carrier's required scans: scan type names only, none twice, and the constant carriers
keep (they sit below tracking) equal to tracking's ScanType."""

from __future__ import annotations

import pytest

from carriers.models import SCAN_TYPE_NAMES, validate_required_scans
from control_tower.tenancy.roles import Role
from tracking.models import ScanType

pytestmark = pytest.mark.django_db


def test_scan_type_names_equal_tracking_scan_types():
    assert list(SCAN_TYPE_NAMES) == list(ScanType.values)


def test_validation_names_unknown_and_repeated_types():
    assert validate_required_scans(["out_for_delivery", "delivered"]) == []
    problems = validate_required_scans(["loaded", "teleported", "loaded"])
    assert len(problems) == 2
    assert "teleported" in problems[0] and "loaded" in problems[1]


def test_the_api_refuses_a_bad_list_and_stores_nothing(tenant, api_client_for):
    client = api_client_for(tenant.user(Role.OWNER))
    url = f"/api/v1/carriers/{tenant.carrier.pk}/"
    response = client.patch(
        url, {"sla_required_scans": ["delivered", "delivered", "beamed"]}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "validation_error"
    assert "sla_required_scans" in body["fields"]
    tenant.carrier.refresh_from_db()
    assert tenant.carrier.sla_required_scans == ["out_for_delivery", "delivered"]
    ok = client.patch(
        url, {"sla_required_scans": ["loaded", "out_for_delivery", "delivered"]}, format="json"
    )
    assert ok.status_code == 200, ok.content
    tenant.carrier.refresh_from_db()
    assert tenant.carrier.sla_required_scans == ["loaded", "out_for_delivery", "delivered"]
