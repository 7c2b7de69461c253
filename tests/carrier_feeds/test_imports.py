"""Manifest and status file imports: CSV and .xlsx, errors by line with nothing applied, dry
runs, limits, and a manifest followed by a status file."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from carriers.feeds.models import FeedImport, InboundCarrierEvent
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import dangerously_all_organizations
from tests.factories import HubFactory
from tracking.models import Scan, Shipment, TrackingLink

pytestmark = pytest.mark.django_db

MANIFEST = "\n".join(
    [
        "reference,barcode,recipient_name,address_line1,city,country_code,hub,"
        "promised_window_start,promised_window_end,service_type",
        "M-1,MB-1,Ana,Av. del Mar 1,La Serena,CL,LS1,"
        "2026-11-20T09:00:00-03:00,2026-11-20T13:00:00-03:00,same_day",
        "M-2,MB-2,Luis,Av. del Mar 2,La Serena,CL,LS1,2026-11-20 10:00,2026-11-20 14:00,next_day",
        "M-3,MB-3,Rosa,Av. del Mar 3,Coquimbo,CL,,,,",
        "",
    ]
)
STATUS = """event_id,barcode,status,reason,occurred_at,note
s-1,MB-1,out_for_delivery,,2026-11-20T09:30:00-03:00,
s-2,MB-1,delivered,,2026-11-20T10:10:00-03:00,Signed
s-3,MB-2,out_for_delivery,,2026-11-20T09:30:00-03:00,
s-4,MB-2,attempt_failed,refused,2026-11-20T11:00:00-03:00,Refused at door
s-5,MB-3,teleported,,2026-11-20T11:00:00-03:00,
"""


def _counts():
    with dangerously_all_organizations():
        return {
            m.__name__: m.dangerously_unscoped.count()
            for m in (Shipment, Scan, InboundCarrierEvent, TrackingLink)
        }


def _upload(client, feed, text_or_bytes, *, kind, name="file.csv", dry_run=False, **extra):
    content = text_or_bytes.encode() if isinstance(text_or_bytes, str) else text_or_bytes
    return client.post(
        f"/api/v1/carrier-feeds/{feed.pk}/imports/",
        {"file": SimpleUploadedFile(name, content), "kind": kind, "dry_run": dry_run, **extra},
        format="multipart",
    )


@pytest.fixture
def dispatcher_client(tenant, api_client_for):
    HubFactory(organization=tenant.organization, code="LS1")
    return api_client_for(tenant.user(Role.DISPATCHER))


def _xlsx(rows) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_manifest_then_status_file(make_feed, dispatcher_client):
    feed = make_feed("native", config={"timezone": "America/Santiago"})
    response = _upload(dispatcher_client, feed, MANIFEST, kind="manifest")
    assert response.status_code == 201, response.json()
    assert response.json()["state"] == "applied"
    assert response.json()["summary"] == {"created": 3}
    with dangerously_all_organizations():
        m2 = Shipment.dangerously_unscoped.get(reference="M-2")
        assert m2.carrier_id == feed.carrier_id and m2.hub.code == "LS1"
        assert m2.service_type == "next_day"
        # Text without an offset is the feed's local time.
        assert m2.promised_window_end.isoformat() == "2026-11-20T17:00:00+00:00"
    assert _counts()["TrackingLink"] == 3

    response = _upload(dispatcher_client, feed, STATUS, kind="status")
    assert response.status_code == 201, response.json()
    summary = response.json()["summary"]
    assert summary["applied"] == 4 and summary["flagged"] == 1
    with dangerously_all_organizations():
        statuses = dict(Shipment.dangerously_unscoped.values_list("reference", "status"))
        events = InboundCarrierEvent.dangerously_unscoped.filter(source="file")
        assert events.count() == 5 and events.filter(flagged=True).count() == 1
        assert all(e.feed_import_id == response.json()["id"] for e in events)
    assert statuses == {"M-1": "delivered", "M-2": "attempt_failed", "M-3": "info_received"}

    # The same status file again: every event is a duplicate, nothing new.
    before = _counts()
    again = _upload(dispatcher_client, feed, STATUS, kind="status")
    assert again.status_code == 201 and again.json()["summary"]["duplicates"] == 5
    assert _counts() == before


def test_manifest_errors_are_reported_by_line_and_nothing_is_applied(make_feed, dispatcher_client):
    feed = make_feed("native")
    bad = MANIFEST.replace("2026-11-20T13:00:00-03:00", "2026-11-20T08:00:00-03:00")
    bad = bad.replace("Luis,Av. del Mar 2,La Serena,CL,LS1", "Luis,Av. del Mar 2,La Serena,CL,XX9")
    bad += "M-1,MB-9,Eva,Calle 9,La Serena,CL,,,,\n"
    bad += "M-6,MB-6,Eva,Calle 9,La Serena,Chile,,,,overnight\n"
    before = _counts()
    response = _upload(dispatcher_client, feed, bad, kind="manifest")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_rows"
    rows = body["fields"]["rows"]
    assert {
        "line": 2,
        "column": "promised_window_end",
        "message": "Must be after the start of the window.",
    } in rows
    assert {"line": 3, "column": "hub", "message": "No hub 'XX9'."} in rows
    assert {(r["line"], r["column"]) for r in rows} >= {
        (5, "reference"),
        (6, "country_code"),
        (6, "service_type"),
    }
    assert _counts() == before
    with dangerously_all_organizations():
        stored = FeedImport.dangerously_unscoped.get(pk=body["fields"]["import"])
        assert stored.state == "rejected" and stored.errors == rows


def test_dry_run_reports_and_applies_nothing(make_feed, dispatcher_client):
    feed = make_feed("native")
    before = _counts()
    response = _upload(dispatcher_client, feed, MANIFEST, kind="manifest", dry_run=True)
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["summary"]) == (
        "validated",
        {"would_create": 3},
    )
    assert _counts() == before
    broken = _upload(
        dispatcher_client, feed, MANIFEST.replace("Rosa", ""), kind="manifest", dry_run=True
    )
    assert broken.status_code == 400
    assert broken.json()["fields"]["rows"] == [
        {"line": 4, "column": "recipient_name", "message": "This field is required."}
    ]
    assert _counts() == before


def test_status_file_errors_by_line_nothing_applied(make_feed, dispatcher_client, shipment_of):
    feed = make_feed("native")
    shipment_of("MB-1", status="out_for_delivery")
    bad = STATUS.replace("2026-11-20T11:00:00-03:00,Refused", "tomorrow,Refused")
    bad += ",,delivered,,2026-11-20T12:00:00Z,\n"
    before = _counts()
    response = _upload(dispatcher_client, feed, bad, kind="status")
    assert response.status_code == 400
    assert response.json()["fields"]["rows"] == [
        {"line": 5, "column": "occurred_at", "message": "Not an ISO-8601 time: 'tomorrow'."},
        {"line": 7, "column": "barcode", "message": "Give the barcode (or the reference)."},
    ]
    assert _counts() == before


def test_xlsx_with_a_column_mapping(make_feed, dispatcher_client):
    feed = make_feed(
        "generic_json",
        config={
            "fields": {"barcode": "b", "status": "s", "occurred_at": "t"},
            "status_map": {"EN RUTA": "out_for_delivery", "ENTREGADO": "delivered"},
            "timezone": "America/Santiago",
            "columns": {
                "reference": "Pedido",
                "barcode": "Código",
                "recipient_name": "Destinatario",
                "address_line1": "Dirección",
                "city": "Comuna",
                "country_code": "País",
                "status": "Estado",
                "occurred_at": "Fecha",
            },
        },
    )
    import datetime as dt

    manifest = _xlsx(
        [
            ["Pedido", "Código", "Destinatario", "Dirección", "Comuna", "País", "parcel_count"],
            ["X-1", "XB-1", "Ana", "Calle 1", "La Serena", "CL", 2],
            ["X-2", "XB-2", "Luis", "Calle 2", "Coquimbo", "CL", 1],
            ["X-3", 7801234.0, "Rosa", "Calle 3", "Coquimbo", "CL", 1.0],  # Excel numbers
        ]
    )
    response = _upload(dispatcher_client, feed, manifest, kind="manifest", name="manifest.xlsx")
    assert response.status_code == 201, response.json()
    statuses = _xlsx(
        [
            ["Código", "Estado", "Fecha"],
            ["XB-1", "EN RUTA", dt.datetime(2026, 11, 20, 9, 0)],
            ["XB-1", "ENTREGADO", dt.datetime(2026, 11, 20, 10, 0)],
            ["XB-2", "EN RUTA", dt.datetime(2026, 11, 20, 9, 0)],
            [7801234, "EN RUTA", dt.datetime(2026, 11, 20, 9, 5)],
        ]
    )
    bad = _xlsx([["Código", "Estado", "Fecha"], ["XB-1", "EN RUTA", "ayer"]])
    refused = _upload(dispatcher_client, feed, bad, kind="status", name="bad.xlsx")
    assert refused.status_code == 400
    assert refused.json()["fields"]["rows"] == [
        {"line": 2, "column": "Fecha", "message": "Not an ISO-8601 time: 'ayer'."}
    ]
    response = _upload(dispatcher_client, feed, statuses, kind="status", name="status.xlsx")
    assert response.status_code == 201, response.json()
    with dangerously_all_organizations():
        assert dict(Shipment.dangerously_unscoped.values_list("reference", "status")) == {
            "X-1": "delivered",
            "X-2": "out_for_delivery",
            "X-3": "out_for_delivery",
        }
        assert Shipment.dangerously_unscoped.get(reference="X-3").barcode == "7801234"
        assert Shipment.dangerously_unscoped.get(reference="X-1").parcel_count == 2
        scan = Scan.dangerously_unscoped.get(barcode="XB-1", scan_type="delivered")
        assert scan.occurred_at.isoformat() == "2026-11-20T13:00:00+00:00"
        assert scan.carrier_status_code == "ENTREGADO"


def test_wrong_types_missing_columns_and_limits(make_feed, dispatcher_client, settings):
    feed = make_feed("native")
    png = _upload(dispatcher_client, feed, b"\x89PNG\r\n", kind="status", name="photo.png")
    assert png.status_code == 415 and png.json()["error"] == "unsupported_media_type"
    fake = _upload(dispatcher_client, feed, b"a,b\n1,2\n", kind="status", name="book.xlsx")
    assert fake.status_code == 400 and "not a valid .xlsx" in fake.json()["detail"]
    missing = _upload(dispatcher_client, feed, "barcode,when\nA,now\n", kind="status")
    assert missing.status_code == 400
    assert missing.json()["fields"]["columns"] == ["Missing: status", "Missing: occurred_at"]
    latin = _upload(
        dispatcher_client,
        feed,
        "barcode,status,occurred_at\nÑ,x,y\n".encode("latin-1"),
        kind="status",
    )
    assert latin.status_code == 400 and "UTF-8" in latin.json()["detail"]
    settings.CARRIER_FEED_MAX_ROWS = 2
    too_many = _upload(dispatcher_client, feed, STATUS, kind="status")
    assert too_many.status_code == 400 and "More than 2 rows" in too_many.json()["detail"]
    settings.CARRIER_FEED_MAX_FILE_BYTES = 10
    too_big = _upload(dispatcher_client, feed, STATUS, kind="status")
    assert too_big.status_code == 400 and "limit is 10" in too_big.json()["detail"]
    bad_kind = _upload(dispatcher_client, feed, STATUS, kind="everything")
    assert bad_kind.status_code == 400 and "kind" in bad_kind.json()["fields"]
    assert _counts()["InboundCarrierEvent"] == 0


def test_who_may_import(tenant, make_feed, api_client_for):
    feed = make_feed("native")
    carrier_user = api_client_for(tenant.user(Role.CARRIER_USER))
    # Carrier users report statuses but do not create shipments.
    assert _upload(carrier_user, feed, MANIFEST, kind="manifest").status_code == 403
    shipped = _upload(carrier_user, feed, STATUS, kind="status")
    assert shipped.status_code == 201, shipped.json()
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    assert _upload(ops, feed, STATUS, kind="status").status_code == 403
    assert ops.get("/api/v1/carrier-feed-imports/").json()["count"] == 1
    driver = api_client_for(tenant.user(Role.DRIVER))
    assert _upload(driver, feed, STATUS, kind="status").status_code == 403
    assert driver.get("/api/v1/carrier-feed-imports/").status_code == 403
