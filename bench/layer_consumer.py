"""The console's live feed as it would look on channels_redis's RedisPubSubChannelLayer, for
bench/realtime_layer.py: a websocket consumer that `group_add`s itself to one organization's
group and forwards every `group_send` to its socket, and the ASGI app uvicorn serves it with
(`bench.layer_consumer:application`).

It is the smallest replacement of the hand-written hub (control_tower/realtime.py) a consumer
could be: no authentication, coalescing or membership re-checks (connect-time work does not
matter at a steady 400 messages/s; the benchmark measures delivery). The layer is registered
under its own alias so the project's settings (the core RedisChannelLayer, used for control
messages) stay untouched.
"""

from __future__ import annotations

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.layers import channel_layers  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels_redis.pubsub import RedisPubSubChannelLayer  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from control_tower.realtime import group_seq_async, organization_group  # noqa: E402

LAYER_ALIAS = "bench_pubsub"
# The handler name channels derives from the message's "type" ("live.delta" -> live_delta).
MESSAGE_TYPE = "live.delta"


def make_layer() -> RedisPubSubChannelLayer:
    """The layer both the server and the benchmark's publisher use: same Redis, and a prefix
    under this checkout's channel-layer prefix, so parallel checkouts never hear each other."""
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    return RedisPubSubChannelLayer(hosts=[settings.REDIS_URL], prefix=f"{prefix}:pubsub")


class LayerEventsConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = LAYER_ALIAS

    async def connect(self):
        organization_id = self.scope["url_route"]["kwargs"]["organization_id"]
        self.group = organization_group(organization_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # The same hello as the real consumer: the last number sent to the group so far.
        seq = await group_seq_async(self.group)
        await self.send(text_data=json.dumps({"v": 1, "type": "hello", "data": {"seq": seq}}))

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def live_delta(self, message):
        # The publisher serialized the delta once; each socket forwards the same text.
        await self.send(text_data=message["text"])


class LeanLayerEventsConsumer(LayerEventsConsumer):
    """The same, minus channels' per-message database clean-up: `AsyncConsumer.dispatch` runs
    `close_old_connections` through `sync_to_async` (a hop to the one sync thread and back)
    before every handler call, which a handler that never touches the database does not need.
    Measured separately, to tell the layer's cost from the consumer machinery's."""

    async def dispatch(self, message):
        if message.get("type") == MESSAGE_TYPE:
            await self.live_delta(message)
        else:
            await super().dispatch(message)


channel_layers.set(LAYER_ALIAS, make_layer())

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/bench/layer/<int:organization_id>/", LayerEventsConsumer.as_asgi()),
                path(
                    "ws/bench/layer-lean/<int:organization_id>/",
                    LeanLayerEventsConsumer.as_asgi(),
                ),
            ]
        ),
    }
)
