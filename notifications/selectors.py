"""Reads for other layers: the messages of shipments as timeline lines (the console's stop
details), with the address masked."""

from __future__ import annotations

from notifications.models import Channel, Notification

TIMELINE_STATUSES = {
    "queued": "queued",
    "held": "held",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "bounced": "bounced",
    "failed": "failed",
    "suppressed": "not sent",
}


def masked_address(channel: str, address: str) -> str:
    """ "+56 9 •••• 4321" / "a•••@example.com": enough to recognise, not to copy."""
    if channel == Channel.SMS:
        if len(address) < 8:
            return "••••"
        return f"{address[:3]} {address[3]} •••• {address[-4:]}"
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"


def notification_timeline(shipment_ids: list[int]) -> list[dict]:
    """One line per message of these shipments: {at, kind: "notification", text, actor,
    shipment}, e.g. "SMS 'out for delivery' to +56 9 •••• 4321: delivered"."""
    items = []
    rows = Notification.objects.filter(shipment_id__in=shipment_ids).order_by("created_at", "id")
    for message in rows:
        label = message.get_trigger_display().lower()
        channel = "SMS" if message.channel == Channel.SMS else "E-mail"
        outcome = TIMELINE_STATUSES.get(message.status, message.status)
        if message.reason:
            outcome = f"{outcome} ({message.get_reason_display().lower()})"
        items.append(
            {
                "at": message.sent_at or message.created_at,
                "kind": "notification",
                "text": (
                    f"{channel} '{label}' to "
                    f"{masked_address(message.channel, message.address)}: {outcome}"
                ),
                "actor": message.provider or "notifications",
                "shipment": message.shipment_id,
            }
        )
    return items
