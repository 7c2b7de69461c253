"""Websocket consumers: authenticate, join organization-scoped groups, forward."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from control_tower.realtime import carrier_group, organization_group
from control_tower.tenancy.roles import Resource, Role

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class OrganizationEventsConsumer(AsyncJsonWebsocketConsumer):
    """Live events of the caller's organization. Carrier users join only their carrier's group,
    so they never receive other carriers' events."""

    groups: list[str] = []

    async def connect(self):
        actor = self.scope.get("actor")
        if actor is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        # Drivers read only their own routes: the organization feed is not for them.
        if actor.role == Role.DRIVER or not actor.can(Resource.ROUTES, "read"):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        organization_id = actor.organization.pk
        if actor.carrier_id is not None:
            self.joined = [carrier_group(organization_id, actor.carrier_id)]
        else:
            self.joined = [organization_group(organization_id)]
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json(
            {"v": 1, "type": "hello", "data": {"organization": actor.organization.slug}}
        )

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"v": 1, "type": "pong"})

    async def event_push(self, message):
        await self.send_json(message["event"])
