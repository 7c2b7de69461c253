"""Writes on shipments, routes and stops. Views and tasks call these; nothing else changes
status fields."""

from tracking.services.routes import (
    route_cancel,
    route_complete,
    route_create,
    route_plan_create,
    route_start,
    route_update,
)
from tracking.services.shipments import (
    SHIPMENT_TRANSITIONS,
    shipment_create,
    shipment_delete,
    shipment_record_creation,
    shipment_transition,
    shipment_update,
    shipments_bulk_create,
)
from tracking.services.stop_edits import stop_create, stop_update
from tracking.services.stop_shipments import stop_shipments_set
from tracking.services.stops import stop_arrive, stop_complete, stop_fail, stop_skip

__all__ = [
    "SHIPMENT_TRANSITIONS",
    "route_cancel",
    "route_complete",
    "route_create",
    "route_plan_create",
    "route_start",
    "route_update",
    "shipment_create",
    "shipment_delete",
    "shipment_record_creation",
    "shipment_transition",
    "shipment_update",
    "shipments_bulk_create",
    "stop_arrive",
    "stop_complete",
    "stop_create",
    "stop_fail",
    "stop_shipments_set",
    "stop_skip",
    "stop_update",
]
