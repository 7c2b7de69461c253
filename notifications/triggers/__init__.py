"""The durable subscribers (one small function per event type), registered from
`NotificationsConfig.ready()`. Names are stable (they key the relay's receipts). All are
`backfill=False`: history recorded after the fact (a replayed day) never texts a customer."""

from __future__ import annotations

from control_tower.events import subscribe


def register() -> None:
    from notifications.triggers import alerts, shipments, stops

    table = [
        ("shipment.created", shipments.on_shipment_created, "notifications.shipment_created"),
        ("shipment.status_changed", shipments.on_status_changed, "notifications.status_changed"),
        ("shipment.rescheduled", shipments.on_rescheduled, "notifications.rescheduled"),
        ("stop.status_changed", stops.on_stop_changed, "notifications.stop_status_changed"),
        ("stop.eta_changed", stops.on_stop_changed, "notifications.stop_eta_changed"),
        ("alert.raised", alerts.on_alert_raised, "notifications.alert_raised"),
        ("alert.escalated", alerts.on_alert_escalated, "notifications.alert_escalated"),
    ]
    for pattern, handler, name in table:
        subscribe(pattern, handler, name=name, backfill=False)
