"""The console as a consumer of the event catalog: catalog events become the socket's
messages (docs/REALTIME.md), after commit. Registered by PortalConfig.ready().

| catalog event             | socket message(s)                                         |
| ------------------------- | --------------------------------------------------------- |
| `shipment.status_changed` | `shipment.status`                                         |
| `stop.status_changed`     | `stop.status`                                             |
| `stop.eta_changed`        | `stop.eta`                                                |
| `route.changed`           | `route.status` (when its status changed), `route.changed` |
| `vehicle.moved`           | `vehicle.moved` (portal/live.py)                          |
| `alert.raised`            | `alert.raised`                                            |
| every other `alert.*`     | `alert.updated`                                           |
| the recipient's actions   | portal/customer_events.py                                 |

`route.changed` carries the route's summary, read here once the transaction has committed, so
it always describes committed state (one per route per transaction: the catalog merges them).
"""

from __future__ import annotations

import logging

from control_tower.events import Event, register_live
from control_tower.events.catalog import (
    ROUTE_CHANGED,
    SHIPMENT_STATUS_CHANGED,
    STOP_ETA_CHANGED,
    STOP_STATUS_CHANGED,
)
from control_tower.models import Organization
from control_tower.realtime import publish_sync_now
from control_tower.tenancy.scope import organization_scope
from exceptions.events import ALERT_EVENT_TYPES, ALERT_RAISED
from portal import customer_events, live
from portal.selectors import route_summary_for
from tracking.models import Route

logger = logging.getLogger(__name__)


def _send(event: Event, message_type: str, data: dict) -> None:
    publish_sync_now(
        organization_id=event.organization_id,
        carrier_id=event.carrier_id,
        event=message_type,
        data=data,
    )


def shipment_status_live(event: Event) -> None:
    p = event.payload
    _send(
        event,
        "shipment.status",
        {
            "id": p["id"],
            "reference": p["reference"],
            "status": p["status"],
            "from": p["from"],
            "at": p["at"],
        },
    )


def stop_status_live(event: Event) -> None:
    p = event.payload
    _send(
        event,
        "stop.status",
        {
            "id": p["id"],
            "route": p["route"],
            "sequence": p["sequence"],
            "status": p["status"],
            "actual_arrival": p["actual_arrival"],
            "actual_departure": p["actual_departure"],
        },
    )


def stop_eta_live(event: Event) -> None:
    p = event.payload
    _send(
        event,
        "stop.eta",
        {
            "id": p["id"],
            "route": p["route"],
            "sequence": p["sequence"],
            "eta": p["eta"],
            "earliest": p["earliest"],
            "latest": p["latest"],
        },
    )


def route_changed_now(*, organization_id: int, route_id: int) -> None:
    """Read the route's summary and send `route.changed` (to the organization and to the
    route's carrier). A route deleted meanwhile sends nothing."""
    organization = Organization.objects.get(pk=organization_id)
    with organization_scope(organization):
        route = Route.objects.filter(pk=route_id).first()
        if route is None:
            return
        summary = route_summary_for(route)
    publish_sync_now(
        organization_id=organization_id,
        carrier_id=route.carrier_id,
        event=ROUTE_CHANGED.name,
        data=summary,
    )


def route_changed_live(event: Event) -> None:
    p = event.payload
    if "status" in p.get("reasons", ()):
        _send(
            event,
            "route.status",
            {"id": p["id"], "code": p["code"], "date": p["date"], "status": p["status"]},
        )
    route_changed_now(organization_id=event.organization_id, route_id=p["id"])


def alert_live(event: Event) -> None:
    """The console knows two alert messages: a new one, and a change to one it may hold
    (acknowledged, assigned, snoozed, escalated, resolved, refreshed). The data is the alert's
    API representation, as the event carries it, so the feed and `/api/v1/alerts/` agree."""
    message_type = ALERT_RAISED if event.type == ALERT_RAISED else "alert.updated"
    _send(event, message_type, event.payload)


def register() -> None:
    for alert_type in ALERT_EVENT_TYPES:
        register_live(alert_type, alert_live)
    register_live(SHIPMENT_STATUS_CHANGED.name, shipment_status_live)
    register_live(STOP_STATUS_CHANGED.name, stop_status_live)
    register_live(STOP_ETA_CHANGED.name, stop_eta_live)
    register_live(ROUTE_CHANGED.name, route_changed_live)
    live.register()
    customer_events.register()
