"""Listening to an event group's deltas from a sync test, the way a web process does: the
group's Redis Pub/Sub channel (control_tower/realtime.py). Subscribe before acting."""

from __future__ import annotations

import json
import time

from control_tower.realtime import live_channel
from control_tower.redis_clients import sync_redis


class LiveListener:
    def __init__(self, group: str) -> None:
        self.pubsub = sync_redis().pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(live_channel(group))

    def next_event(self, timeout: float = 10.0) -> dict:
        """The next delta (`{"v", "type", "seq", "data"}`); TimeoutError if none comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=max(0.0, deadline - time.monotonic()))
            if message is not None and message["type"] == "message":
                return json.loads(message["data"])
        raise TimeoutError("no live event")

    def close(self) -> None:
        self.pubsub.close()
