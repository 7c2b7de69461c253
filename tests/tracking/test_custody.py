"""The chain of custody through the API: the chain a day of scans builds, verification, tamper
detection (past the append-only trigger), the export and the offline verifier, the command."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import pathlib
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.utils import timezone

from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import CarrierFactory, HubFactory, ShipmentFactory
from tracking.models import CustodyEntry
from tracking.services import custody as custody_service

pytestmark = pytest.mark.django_db

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "verify_custody.py"
T0 = timezone.now().replace(microsecond=0) - dt.timedelta(hours=1)


def offline_module():
    spec = importlib.util.spec_from_file_location("verify_custody_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scan(scan_type: str, minutes: int, **extra) -> dict:
    return {
        "barcode": "PKG-1",
        "scan_type": scan_type,
        "occurred_at": (T0 + dt.timedelta(minutes=minutes)).isoformat(),
        "location": {"lat": -29.9 - minutes / 1000, "lon": -71.25},
        **extra,
    }


@pytest.fixture
def parcel(tenant):
    hub = HubFactory(organization=tenant.organization, code="lsr-1")
    return ShipmentFactory(
        organization=tenant.organization,
        carrier=tenant.carrier,
        hub=hub,
        barcode="PKG-1",
        reference="ORD/1 ñ",
    )


@pytest.fixture
def dispatcher(tenant, api_client_for):
    return api_client_for(tenant.user(Role.DISPATCHER))


@pytest.fixture
def delivered(tenant, parcel, dispatcher, device_for, device_client_for):
    """A parcel taken through a day: scans from a phone plus a dispatcher's transition."""
    _device, token = device_for(tenant)
    phone = device_client_for(token)
    response = phone.post(
        "/api/v1/ingest/scans",
        {
            "scans": [
                scan("picked_up", 0),
                scan("arrived_at_hub", 10, hub="lsr-1"),
                scan("loaded", 20),
                scan("out_for_delivery", 21),
                scan("attempt_failed", 30, reason_code="not_home", note="dog"),
            ]
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    moved = dispatcher.post(
        f"/api/v1/shipments/{parcel.pk}/transition/", {"status": "out_for_delivery"}, format="json"
    )
    assert moved.status_code == 200, moved.content
    response = phone.post(
        "/api/v1/ingest/scans",
        {
            "scans": [
                # After the dispatcher's transition (which happened "now").
                scan("delivered", 59, occurred_at=timezone.now().isoformat()),
                scan("out_for_delivery", 59, event_id="late"),
            ]
        },
        format="json",
    )
    assert [r["result"] for r in response.json()["results"]] == ["applied", "illegal"]
    return parcel


def url(shipment, tail=""):
    return f"/api/v1/shipments/{shipment.pk}/custody/{tail}"


def test_the_chain_after_a_day_of_events(delivered, dispatcher):
    response = dispatcher.get(url(delivered))
    assert response.status_code == 200
    entries = response.json()
    assert [e["sequence"] for e in entries] == list(range(1, 9))
    assert [e["kind"] for e in entries] == [
        "handoff",
        "scan",
        "handoff",
        "scan",
        "scan",
        "status",
        "scan",
        "scan",
    ]
    assert [e["details"].get("result") for e in entries] == [
        "recorded",
        "applied",
        "recorded",
        "applied",
        "applied",
        None,
        "applied",
        "illegal",
    ]
    assert entries[0]["prev_hash"] == "0" * 64
    for before, after in zip(entries, entries[1:], strict=False):
        assert after["prev_hash"] == before["hash"]
    assert entries[1]["custodian"] == "hub:lsr-1"
    assert entries[2]["custodian"] == f"carrier:{delivered.carrier.code}"  # phone without driver
    assert entries[5]["actor"] == "dispatcher@acme.example.com"
    assert entries[6]["custodian"] == "recipient:Ana Pérez"
    assert entries[7]["custodian"] == entries[6]["custodian"]  # a refused scan hands nothing
    assert entries[1]["location"] == {"type": "Point", "coordinates": [-71.25, -29.91]}
    assert dispatcher.get(url(delivered, "verify/")).json() == {
        "valid": True,
        "entries": 8,
        "first_broken": None,
    }


def tamper(shipment, sequence: int) -> CustodyEntry:
    """Rewrite one entry's actor as a superuser could: past the append-only trigger (switched
    off for this session); only the hashes can tell."""
    target = CustodyEntry.dangerously_unscoped.get(shipment=shipment, sequence=sequence)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(
                "UPDATE tracking_custodyentry SET actor = 'mallory' WHERE id = %s", [target.pk]
            )
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
    return target


def test_tampering_is_detected_and_named(delivered, dispatcher):
    target = tamper(delivered, 4)
    assert dispatcher.get(url(delivered, "verify/")).json() == {
        "valid": False,
        "entries": 8,
        "first_broken": {
            "sequence": 4,
            "id": target.pk,
            "reason": "content does not match its hash (the entry was altered)",
        },
    }
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 1 chains of custody are broken"):
        call_command("verify_custody", "--org", "acme", "--all", stdout=out)
    assert f"BROKEN at sequence 4 (entry {target.pk})" in out.getvalue()


def test_removing_a_link_is_detected(delivered, dispatcher):
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(
                "DELETE FROM tracking_custodyentry WHERE shipment_id = %s AND sequence = 6",
                [delivered.pk],
            )
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")
    broken = dispatcher.get(url(delivered, "verify/")).json()["first_broken"]
    assert broken["sequence"] == 7 and broken["reason"] == "expected sequence 6, found 7"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE tracking_custodyentry SET actor = 'mallory' WHERE shipment_id = %s",
        "DELETE FROM tracking_custodyentry WHERE shipment_id = %s",
    ],
)
def test_update_and_delete_are_refused_by_the_database(delivered, statement):
    # The trigger raises SQLSTATE 42501 (insufficient_privilege): psycopg's
    # InsufficientPrivilege, which Django surfaces as django.db.utils.ProgrammingError.
    with (
        pytest.raises(ProgrammingError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, [delivered.pk])
    assert CustodyEntry.dangerously_unscoped.filter(shipment=delivered).count() == 8
    assert not CustodyEntry.dangerously_unscoped.filter(actor="mallory").exists()


def run_offline(path, *args):
    return subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [sys.executable, str(SCRIPT), str(path), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_export_verifies_offline_and_an_edit_is_caught(delivered, dispatcher, tmp_path):
    response = dispatcher.get(url(delivered, "export/"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="custody-ORD_1_.json"'
    document = response.json()
    assert document["format"] == "ct-custody-v1" and len(document["links"]) == 8
    assert document["shipment"] == {"id": delivered.pk, "reference": "ORD/1 ñ"}
    path = tmp_path / "export.json"
    path.write_bytes(response.content)  # exactly the bytes the API served

    ok = run_offline(path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    head = document["links"][-1]["hash"]
    assert ok.stdout.strip() == f"OK: shipment ORD/1 ñ: 8 links, head {head}"
    assert run_offline(path, "--expect-head", head).returncode == 0
    assert run_offline(path, "--expect-head", "0" * 64).returncode == 1

    # Someone "corrects" who delivered the parcel.
    document["links"][6]["content"]["custodian"] = "recipient:Someone Else"
    path.write_text(json.dumps(document, indent=2))
    broken = run_offline(path)
    assert broken.returncode == 1
    link_id = document["links"][6]["id"]
    assert broken.stdout.strip() == (
        f"BROKEN: shipment ORD/1 ñ: link sequence 7 (id {link_id}): content does not match "
        "its hash (the entry was altered)"
    )

    # ... and recomputes that link's hash: the next link no longer points at it.
    offline = offline_module()
    links = document["links"]
    links[6]["hash"] = offline.chain_hash(links[6]["prev_hash"], links[6]["content"])
    path.write_text(json.dumps(document))
    assert "link sequence 8" in run_offline(path).stdout

    path.write_text('{"format": "something else"}')
    assert run_offline(path).returncode == 2


CONTENTS = [
    {},
    {"a": 1, "b": [1, 2.5, None, True], "c": {"z": "ñandú ✓", "a": '"quoted"\n'}},
    {"location": [-71.2512345, -29.9012345], "evidence": {"photo": "ab" * 32}, "n": 10**20},
    {"emoji": "📦", "nested": {"list": [{"b": 2, "a": 1}]}, "zero": 0.0, "neg": -1.5e-7},
]


@pytest.mark.parametrize("content", CONTENTS)
def test_offline_hashing_is_the_services_hashing(content):
    offline = offline_module()
    assert offline.GENESIS_HASH == custody_service.GENESIS_HASH
    assert offline.CHAIN_FORMAT == custody_service.CHAIN_FORMAT
    assert offline.canonical_json(content) == custody_service.canonical_json(content)
    prev = "f" * 64
    assert offline.chain_hash(prev, content) == custody_service.chain_hash(prev, content)


def test_offline_verification_is_the_services_verification(delivered):
    offline = offline_module()
    with organization_scope(delivered.organization):
        links = custody_service.export_links(delivered)

    def both(variant):
        service = custody_service.verify_links(variant)
        script = offline.first_broken(variant)
        if service.valid:
            assert script is None
        else:
            assert script == (
                service.first_broken_sequence,
                service.first_broken_id,
                service.reason,
            )
        return service.valid

    assert both(links)
    assert not both(links[:3] + links[4:])  # a link removed
    assert not both([links[1], links[0], *links[2:]])  # reordered
    edited = json.loads(json.dumps(links))
    edited[2]["content"]["actor"] = "mallory"
    assert not both(edited)
    relinked = json.loads(json.dumps(links))
    relinked[5]["prev_hash"] = "1" * 64
    assert not both(relinked)


def test_custody_reads_need_shipment_read_and_follow_carrier_narrowing(
    tenant, delivered, api_client_for, api_key_for
):
    ops = api_client_for(tenant.user(Role.OPS_MANAGER))
    carrier_user = api_client_for(tenant.user(Role.CARRIER_USER))
    key = api_client_for(key=api_key_for(tenant, scopes=["shipments:read"]))
    for client in (ops, carrier_user, key):
        for tail in ("", "verify/", "export/"):
            assert client.get(url(delivered, tail)).status_code == 200
    tracking_only = api_client_for(key=api_key_for(tenant, scopes=["tracking:write"]))
    driver = api_client_for(tenant.user(Role.DRIVER))
    for client in (tracking_only, driver):
        assert client.get(url(delivered)).status_code == 403
    rival = ShipmentFactory(
        organization=tenant.organization,
        carrier=CarrierFactory(organization=tenant.organization, code="rival"),
    )
    for tail in ("", "verify/", "export/"):
        assert carrier_user.get(url(rival, tail)).status_code == 404
        assert ops.get(url(rival, tail)).status_code == 200


def test_another_organization_gets_404_on_our_custody(
    other_tenant, delivered, api_client_for, api_key_for
):
    for client in (
        api_client_for(other_tenant.user(Role.OWNER)),
        api_client_for(key=api_key_for(other_tenant)),
    ):
        for tail in ("", "verify/", "export/"):
            response = client.get(url(delivered, tail))
            assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_the_command_checks_one_shipment_or_all(tenant, delivered):
    out = StringIO()
    call_command("verify_custody", "--org", "acme", "--shipment", "ORD/1 ñ", stdout=out)
    assert "ORD/1 ñ: OK (8 entries)" in out.getvalue()
    out = StringIO()
    call_command("verify_custody", "--org", "acme", "--shipment", "PKG-1", stdout=out)
    assert "OK (8 entries)" in out.getvalue()
    out = StringIO()
    call_command("verify_custody", "--org", "acme", "--all", stdout=out)
    assert "1 chains of custody verified." in out.getvalue()
    with pytest.raises(CommandError, match="No shipment 'nope'"):
        call_command("verify_custody", "--org", "acme", "--shipment", "nope")
    with pytest.raises(CommandError):
        call_command("verify_custody", "--org", "acme")
