"""Shipment creation and edits keep their rules in tracking/services/shipments.py: called
directly (as the demo loader, commands and later importers do) and through the API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.hashers import check_password

from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from tests.factories import CarrierFactory, HubFactory, ShipmentFactory
from tracking.errors import InvalidInput
from tracking.models import Shipment, ShipmentEvent
from tracking.services.shipments import shipment_create, shipment_update, shipments_bulk_create

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def fields(n=1, **extra):
    return {
        "reference": f"ORD-{n}",
        "barcode": f"BC-{n}",
        "recipient_name": "Ana",
        "address_line1": "Av. Francisco de Aguirre 100",
        "city": "La Serena",
        "country_code": "CL",
        **extra,
    }


@pytest.fixture
def dispatcher(tenant):
    return actor_for_membership(tenant.members[Role.DISPATCHER])


def test_create_applies_the_defaults_and_records_the_first_status(tenant, dispatcher, scoped):
    shipment = shipment_create(actor=dispatcher, data=fields(delivery_pin="4321"))

    assert shipment.organization == tenant.organization and shipment.status == "info_received"
    assert check_password("4321", shipment.delivery_pin_hash)
    (event,) = ShipmentEvent.objects.filter(shipment=shipment)
    assert (event.from_status, event.to_status, event.source) == ("", "info_received", "api")
    assert event.actor == tenant.user(Role.DISPATCHER)


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"status": "delivered"}, "status"),
        ({"reference": "TAKEN"}, "reference"),
        ({"barcode": "TAKEN-BC"}, "barcode"),
        ({"promised_window_start": NOON, "promised_window_end": NOON}, "promised_window_end"),
    ],
)
def test_create_refuses_what_breaks_a_rule_and_writes_nothing(
    tenant, dispatcher, scoped, extra, field
):
    ShipmentFactory(organization=tenant.organization, reference="TAKEN", barcode="TAKEN-BC")
    with pytest.raises(InvalidInput) as refused:
        shipment_create(actor=dispatcher, data=fields(**extra))
    assert refused.value.code == "validation_error" and field in refused.value.fields
    assert Shipment.objects.count() == 1 and not ShipmentEvent.objects.exists()


def test_create_refuses_another_organizations_carrier_or_hub(tenant, other_tenant, dispatcher):
    foreign_hub = HubFactory(organization=other_tenant.organization)
    with organization_scope(tenant.organization):
        for extra, field in (
            ({"carrier": other_tenant.carrier}, "carrier"),
            ({"hub": foreign_hub}, "hub"),
        ):
            with pytest.raises(InvalidInput) as refused:
                shipment_create(actor=dispatcher, data=fields(**extra))
            assert field in refused.value.fields
        assert not Shipment.objects.exists()


def test_bulk_create_names_every_problem_by_index(tenant, other_tenant, dispatcher, scoped):
    ShipmentFactory(organization=tenant.organization, reference="TAKEN")
    items = [
        fields(0),
        fields(1, reference="TAKEN"),
        fields(2, barcode="BC-0"),
        fields(3, carrier=other_tenant.carrier),
        fields(4, status="returned"),
    ]
    with pytest.raises(InvalidInput) as refused:
        shipments_bulk_create(actor=dispatcher, items=items)
    by_index = refused.value.fields["shipments"]
    assert set(by_index) == {"1", "2", "3", "4"}
    assert "reference" in by_index["1"] and "Repeats item 0" in by_index["2"]["barcode"][0]
    assert "carrier" in by_index["3"] and "status" in by_index["4"]
    assert Shipment.objects.count() == 1
    created = shipments_bulk_create(actor=dispatcher, items=[fields(n) for n in range(3)])
    assert [s.status for s in created] == ["info_received"] * 3


def test_update_keeps_the_rules_and_never_touches_the_status(tenant, dispatcher, scoped):
    ShipmentFactory(organization=tenant.organization, barcode="TAKEN-BC")
    shipment = shipment_create(
        actor=dispatcher, data=fields(promised_window_start=NOON, carrier=tenant.carrier)
    )
    with pytest.raises(InvalidInput) as refused:
        shipment_update(shipment=shipment, actor=dispatcher, data={"promised_window_end": NOON})
    assert "promised_window_end" in refused.value.fields
    with pytest.raises(InvalidInput) as refused:
        shipment_update(shipment=shipment, actor=dispatcher, data={"barcode": "TAKEN-BC"})
    assert "barcode" in refused.value.fields
    with pytest.raises(InvalidInput, match="transition"):
        shipment_update(shipment=shipment, actor=dispatcher, data={"status": "at_hub"})
    other = CarrierFactory(organization=tenant.organization)
    same_barcode = shipment_update(
        shipment=shipment, actor=dispatcher, data={"barcode": "BC-1", "carrier": other}
    )
    assert same_barcode.carrier == other
    shipment.refresh_from_db()
    assert shipment.status == "info_received" and shipment.barcode == "BC-1"


def test_the_api_answers_the_services_refusals_as_field_errors(tenant, api_client_for):
    api = api_client_for(tenant.user(Role.DISPATCHER))
    ShipmentFactory(organization=tenant.organization, barcode="TAKEN-BC")
    base = {**fields(), "country_code": "cl"}
    created = api.post("/api/v1/shipments/", base, format="json")
    assert created.status_code == 201, created.content
    url = f"/api/v1/shipments/{created.json()['id']}/"
    clash = api.patch(url, {"barcode": "TAKEN-BC"}, format="json")
    assert clash.status_code == 400 and clash.json()["error"] == "validation_error"
    assert "already exists" in clash.json()["fields"]["barcode"][0]
    api.patch(url, {"promised_window_start": "2026-11-24T15:00:00Z"}, format="json")
    window = api.patch(url, {"promised_window_end": "2026-11-24T14:00:00Z"}, format="json")
    assert window.status_code == 400 and "promised_window_end" in window.json()["fields"]
    pin = api.patch(url, {"delivery_pin": "98765"}, format="json")
    assert pin.status_code == 200 and pin.json()["pin_required"] is True
    assert "delivery_pin" not in pin.json()
