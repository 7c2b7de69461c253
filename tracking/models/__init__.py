"""Models of the tracking app, one module per concern, re-exported here."""

from tracking.models.custody import CustodyEntry
from tracking.models.eta import EtaCalibration, EtaModel, EtaRevision
from tracking.models.ingest import (
    DevicePosition,
    Ping,
    PingFlag,
    PingSource,
    Scan,
    ScanResult,
    ScanType,
)
from tracking.models.plan import (
    FailureReason,
    Hub,
    HubKind,
    Route,
    RouteStatus,
    Shipment,
    ShipmentEvent,
    ShipmentStatus,
    Stop,
    StopKind,
    StopShipment,
    StopStatus,
)
from tracking.models.pod import PodFile, PodFileKind, ProofOfDelivery
from tracking.models.roads import OSM_ATTRIBUTION, RoadEdge, RoadNetwork, RoadNode

__all__ = [
    "CustodyEntry",
    "EtaCalibration",
    "EtaModel",
    "EtaRevision",
    "DevicePosition",
    "Ping",
    "PingFlag",
    "PingSource",
    "PodFile",
    "PodFileKind",
    "ProofOfDelivery",
    "OSM_ATTRIBUTION",
    "RoadEdge",
    "RoadNetwork",
    "RoadNode",
    "Scan",
    "ScanResult",
    "ScanType",
    "FailureReason",
    "Hub",
    "HubKind",
    "Route",
    "RouteStatus",
    "Shipment",
    "ShipmentEvent",
    "ShipmentStatus",
    "Stop",
    "StopKind",
    "StopShipment",
    "StopStatus",
]
