"""The scan ingest carries the carrier's own codes into `Scan.carrier_status_code` /
`carrier_reason_code` (kept as sent, shown in the scan reads)."""

from __future__ import annotations

import pytest

from control_tower.tenancy.roles import Role

pytestmark = pytest.mark.django_db


def test_scan_ingest_keeps_the_carriers_codes(tenant, shipment_of, api_client_for):
    shipment_of("CODES-1", status="out_for_delivery")
    client = api_client_for(tenant.user(Role.DISPATCHER))
    scan = {
        "barcode": "CODES-1",
        "scan_type": "attempt_failed",
        "reason_code": "not_home",
        "carrier_status_code": "NE",
        "carrier_reason_code": "AUS-01",
        "occurred_at": "2026-11-20T10:00:00Z",
    }
    response = client.post("/api/v1/ingest/scans", {"scans": [scan]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["results"][0]["result"] == "applied"
    stored = client.get("/api/v1/scans/?barcode=CODES-1").json()["results"][0]
    assert (stored["carrier_status_code"], stored["carrier_reason_code"]) == ("NE", "AUS-01")
    too_long = {**scan, "carrier_status_code": "x" * 65}
    refused = client.post("/api/v1/ingest/scans", {"scans": [too_long]}, format="json")
    assert refused.status_code == 400
    assert "carrier_status_code" in refused.json()["fields"]["scans"]["0"]
