"""The process-wide live hub (control_tower/realtime.py) on the real Redis: sockets that join a
group at the same moment share one subscription, and every one of them gets the first delta
published after they joined (none starts reading before the subscription exists)."""

from __future__ import annotations

import asyncio
import json
import logging

from control_tower.realtime import live_join, live_leave, organization_group, publish_now

ORGANIZATION_ID = 987_654  # no database row needed: groups are names in Redis


def test_sockets_joining_at_once_all_get_the_first_delta(caplog):
    group = organization_group(ORGANIZATION_ID)

    async def scenario():
        inboxes = [[] for _ in range(12)]
        # All join concurrently: the first subscribes, the others wait for that subscription.
        await asyncio.gather(*(live_join(group, inbox.append) for inbox in inboxes))
        await publish_now(organization_id=ORGANIZATION_ID, event="test.delta", data={"n": 1})
        for _ in range(100):
            if all(inboxes):
                break
            await asyncio.sleep(0.02)
        await asyncio.gather(*(live_leave(group, inbox.append) for inbox in inboxes))
        return inboxes

    with caplog.at_level(logging.WARNING, logger="control_tower.realtime"):
        inboxes = asyncio.run(scenario())
    messages = [[json.loads(text) for text in inbox] for inbox in inboxes]
    assert all(len(inbox) == 1 for inbox in messages), [len(i) for i in messages]
    assert {m[0]["type"] for m in messages} == {"test.delta"}
    assert len({m[0]["seq"] for m in messages}) == 1  # one publish, one seq, twelve sockets
    assert "live subscription failed" not in caplog.text
