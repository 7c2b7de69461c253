"""The process-wide live hub (control_tower/realtime.py) on the real Redis: sockets that join a
group at the same moment share one subscription, and every one of them gets the first delta
published after they joined (none starts reading before the subscription exists). On the hub as
it was before commit c147cc0 the first test fails with redis-py's "RuntimeError: pubsub connection
not set" (a second joiner started the reader while the first SUBSCRIBE was still connecting)."""

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


def test_a_socket_whose_delivery_raises_does_not_stop_the_others(caplog):
    """One broken socket callback must not end the process's only reader: before, the exception
    left the reader task dead (and never restarted), so every socket of the process went silent."""
    group = organization_group(ORGANIZATION_ID + 1)

    def broken(_text: str) -> None:
        raise ValueError("this socket is gone")

    async def scenario():
        inbox: list[str] = []
        await live_join(group, broken)
        await live_join(group, inbox.append)
        for n in (1, 2):
            await publish_now(
                organization_id=ORGANIZATION_ID + 1, event="test.delta", data={"n": n}
            )
        for _ in range(100):
            if len(inbox) == 2:
                break
            await asyncio.sleep(0.02)
        await live_leave(group, broken)
        await live_leave(group, inbox.append)
        return inbox

    with caplog.at_level(logging.WARNING, logger="control_tower.realtime"):
        inbox = asyncio.run(scenario())
    assert [json.loads(text)["data"]["n"] for text in inbox] == [1, 2]
    assert "this socket is gone" in caplog.text  # logged, not swallowed
