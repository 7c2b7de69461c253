"""The shipment status machine, exhaustively."""

import itertools

import pytest

from control_tower.errors import IllegalTransition
from control_tower.tenancy.scope import organization_scope
from tests.factories import ShipmentFactory
from tracking.models import ShipmentEvent, ShipmentStatus
from tracking.services import SHIPMENT_TRANSITIONS, shipment_transition

pytestmark = pytest.mark.django_db

FINAL = {"delivered", "returned", "cancelled"}


@pytest.mark.parametrize(
    ("start", "target"), list(itertools.product(ShipmentStatus.values, ShipmentStatus.values))
)
def test_every_pair(start, target, org):
    shipment = ShipmentFactory(organization=org, status=start)
    with organization_scope(org):
        if start == target:
            result = shipment_transition(shipment=shipment, to_status=target, actor=None)
            assert result.changed is False
        elif target in SHIPMENT_TRANSITIONS[start]:
            result = shipment_transition(shipment=shipment, to_status=target, actor=None)
            assert result.changed and result.shipment.status == target
            assert result.event.from_status == start
        else:
            with pytest.raises(IllegalTransition):
                shipment_transition(shipment=shipment, to_status=target, actor=None)
            shipment.refresh_from_db()
            assert shipment.status == start
            assert not ShipmentEvent.dangerously_unscoped.filter(shipment=shipment).exists()


def test_final_statuses_are_final():
    for status in FINAL:
        assert SHIPMENT_TRANSITIONS[status] == frozenset()
    # and every non-final status can still reach a final one
    for status in set(ShipmentStatus.values) - FINAL:
        assert SHIPMENT_TRANSITIONS[status] & (FINAL | {"out_for_delivery", "at_hub"})
