"""Publishing live events to websocket clients, after commit, on organization-scoped groups."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

EVENT_VERSION = 1


def organization_group(organization_id: int) -> str:
    return f"org.{organization_id}"


def carrier_group(organization_id: int, carrier_id: int) -> str:
    return f"org.{organization_id}.carrier.{carrier_id}"


def _message_and_groups(organization_id, event, data, carrier_id):
    message = {"type": "event.push", "event": {"v": EVENT_VERSION, "type": event, "data": data}}
    groups = [organization_group(organization_id)]
    if carrier_id is not None:
        groups.append(carrier_group(organization_id, carrier_id))
    return message, groups


async def publish_now(
    *, organization_id: int, event: str, data: dict, carrier_id: int | None = None
) -> None:
    """The async twin of `publish_on_commit`, for code that runs on the event loop after its
    own write has committed (the ingest fast path). Failures are logged, never raised."""
    message, groups = _message_and_groups(organization_id, event, data, carrier_id)
    layer = get_channel_layer()
    for group in groups:
        try:
            await layer.group_send(group, message)
        except Exception:  # noqa: BLE001
            logger.warning("could not publish %s to %s", event, group, exc_info=True)


def publish_on_commit(
    *, organization_id: int, event: str, data: dict, carrier_id: int | None = None
) -> None:
    """Send `{"v": 1, "type": event, "data": data}` to the organization's sockets (and to the
    carrier's, when the event concerns one) once the transaction commits. A channel-layer
    failure is logged, never raised: the data is already committed."""
    message, groups = _message_and_groups(organization_id, event, data, carrier_id)

    def send() -> None:
        layer = get_channel_layer()
        for group in groups:
            try:
                async_to_sync(layer.group_send)(group, message)
            except Exception:  # noqa: BLE001
                logger.warning("could not publish %s to %s", event, group, exc_info=True)

    transaction.on_commit(send)
