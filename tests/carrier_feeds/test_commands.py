"""The commands: `import_carrier_file` and the idempotent `carrier_feeds_demo`."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from carriers.feeds.models import FeedImport, InboundCarrierEvent
from control_tower.tenancy.scope import dangerously_all_organizations
from tests.carrier_feeds.test_imports import MANIFEST, STATUS
from tests.factories import CarrierFactory, HubFactory, OrganizationFactory
from tracking.models import Scan, Shipment

pytestmark = pytest.mark.django_db


def _shipments():
    with dangerously_all_organizations():
        return dict(Shipment.dangerously_unscoped.values_list("reference", "status"))


def test_import_carrier_file(tenant, make_feed, tmp_path, capsys):
    HubFactory(organization=tenant.organization, code="LS1")
    make_feed("native")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(MANIFEST)
    args = ["import_carrier_file", "--org", "acme", "--carrier", tenant.carrier.code]
    call_command(*args, "--kind", "manifest", "--dry-run", str(manifest))
    assert "dry run, nothing applied" in capsys.readouterr().out
    assert _shipments() == {}
    call_command(*args, "--kind", "manifest", str(manifest))
    assert len(_shipments()) == 3
    status = tmp_path / "status.csv"
    status.write_text(STATUS)
    call_command(*args, "--kind", "status", str(status))
    assert _shipments()["M-1"] == "delivered"

    broken = tmp_path / "broken.csv"
    broken.write_text(STATUS.replace("2026-11-20T10:10:00-03:00", "later"))
    with pytest.raises(CommandError, match="1 row error"):
        call_command(*args, "--kind", "status", str(broken))
    assert "line 3, occurred_at" in capsys.readouterr().err
    with pytest.raises(CommandError, match="No carrier"):
        call_command(
            "import_carrier_file",
            "--org",
            "acme",
            "--carrier",
            "zz",
            "--kind",
            "status",
            str(status),
        )


def test_carrier_feeds_demo_is_idempotent(capsys):
    organization = OrganizationFactory(slug="demo", time_zone="America/Santiago")
    CarrierFactory(organization=organization, code="andes3pl", name="Andes 3PL")
    HubFactory(organization=organization, code="LSR")
    HubFactory(organization=organization, code="CQB")
    call_command("carrier_feeds_demo", "--org", "demo")
    out = capsys.readouterr().out
    assert "Imported" in out and "20 shipments" in out
    assert "Delayed_042: unmapped (flagged)" in out
    assert "AttemptFail_002 -> attempt_failed/not_home: applied" in out
    assert "Delivered_001: duplicate, shipment delivered" in out
    assert "OutForDelivery_003: illegal, shipment delivered" in out
    assert "curl -X POST" in out and "Api-Key ctk_" in out
    with dangerously_all_organizations():
        statuses = list(Shipment.dangerously_unscoped.values_list("status", flat=True))
        counts = (
            Shipment.dangerously_unscoped.count(),
            Scan.dangerously_unscoped.count(),
            InboundCarrierEvent.dangerously_unscoped.count(),
            FeedImport.dangerously_unscoped.count(),
        )
    assert statuses.count("delivered") == 14
    assert statuses.count("attempt_failed") == 3
    assert statuses.count("out_for_delivery") == 3
    # 40 posts: one duplicate, one unknown code (kept, no scan).
    assert counts == (20, 38, 39, 1)

    call_command("carrier_feeds_demo", "--org", "demo")
    out = capsys.readouterr().out
    assert "already imported" in out and '"duplicate": 40' in out
    with dangerously_all_organizations():
        assert (
            Shipment.dangerously_unscoped.count(),
            Scan.dangerously_unscoped.count(),
            InboundCarrierEvent.dangerously_unscoped.count(),
            FeedImport.dangerously_unscoped.count(),
        ) == counts
