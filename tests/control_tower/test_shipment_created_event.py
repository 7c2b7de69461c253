"""`shipment.created`: one durable event per shipment created, one at a time or in a batch."""

from __future__ import annotations

import pytest
from django.db import transaction

from control_tower.events.models import OutboxEvent
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tracking.services.shipments import shipment_create, shipments_bulk_create

pytestmark = pytest.mark.django_db


def _item(n: int, carrier) -> dict:
    return {
        "reference": f"ORD-{n}",
        "barcode": f"BC-{n}",
        "recipient_name": "Ana",
        "address_line1": "Calle 1",
        "city": "La Serena",
        "country_code": "CL",
        "carrier": carrier,
    }


def _created_rows():
    return list(OutboxEvent.dangerously_unscoped.filter(type="shipment.created").order_by("id"))


def test_shipment_create_emits_one_shipment_created(tenant):
    actor = actor_for_membership(tenant.members[Role.OWNER])
    with organization_scope(tenant.organization):
        shipment = shipment_create(actor=actor, data=_item(1, tenant.carrier))
    (row,) = _created_rows()
    assert row.aggregate_type == "shipment" and row.aggregate_id == str(shipment.pk)
    assert row.carrier_id == tenant.carrier.pk
    assert row.payload == {
        "id": shipment.pk,
        "reference": "ORD-1",
        "status": "info_received",
        "carrier": tenant.carrier.pk,
    }


def test_a_batch_emits_one_per_shipment(tenant):
    actor = actor_for_membership(tenant.members[Role.OWNER])
    with organization_scope(tenant.organization):
        created = shipments_bulk_create(
            actor=actor, items=[_item(n, tenant.carrier) for n in range(5)]
        )
    rows = _created_rows()
    assert sorted(int(r.aggregate_id) for r in rows) == sorted(s.pk for s in created)
    assert {r.payload["reference"] for r in rows} == {f"ORD-{n}" for n in range(5)}


def test_a_rolled_back_creation_leaves_no_event(tenant):
    actor = actor_for_membership(tenant.members[Role.OWNER])
    with organization_scope(tenant.organization):
        try:
            with transaction.atomic():
                shipment_create(actor=actor, data=_item(1, tenant.carrier))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert _created_rows() == []
