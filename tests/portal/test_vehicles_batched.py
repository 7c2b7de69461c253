"""Positions batched per organization and tick (`vehicles.moved`, control_tower/realtime.py)
against the unbatched path they replace: on the same pings, each socket receives exactly the
positions the per-ping `vehicle.moved` messages carried (the same data), per scope (the
organization's dispatcher every vehicle, a carrier user only their carrier's, another tenant
none), in order per vehicle, with consecutive `seq` numbers; and in fewer frames than pings.
Real uvicorn-less ASGI app, real Redis Pub/Sub, real PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from asgiref.sync import async_to_sync

from control_tower import realtime
from control_tower.asgi import application
from control_tower.events.registry import register_live_async, unregister_live
from control_tower.tenancy.roles import Role
from portal.live import VEHICLES_MOVED, vehicle_moved_data
from tests.factories import CarrierFactory, MembershipFactory, VehicleFactory
from tests.portal.test_events_socket import communicator, session_cookie
from tests.portal.test_vehicle_moved import collect
from tracking.ingest import fast
from tracking.ingest.vehicles import clear_route_cache

pytestmark = pytest.mark.django_db(transaction=True)

NOW = int(time.time()) - 600


@pytest.fixture(autouse=True)
def _fresh_route_cache():
    clear_route_cache()
    yield
    clear_route_cache()


def fix(round_: int, vehicle_index: int) -> dict:
    return {
        "id": "48241179",
        "lat": f"{-29.9 - vehicle_index * 0.001 - round_ * 0.0001:.6f}",
        "lon": "-71.2489",
        "timestamp": str(NOW + round_ * 5),
        "speed": "10",
        "bearing": "90",
        "batt": "70",
    }


def received(messages: list[dict], hello_seq: int) -> tuple[list[dict], int]:
    """The positions in the order they arrived, and how many position frames carried them;
    asserts the socket's numbers are consecutive from its hello."""
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(hello_seq + 1, hello_seq + 1 + len(messages)))
    assert {m["type"] for m in messages} <= {VEHICLES_MOVED}
    return [item for m in messages for item in m["data"]["items"]], len(messages)


def by_vehicle(items: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for item in items:
        out.setdefault(item["id"], []).append(item)
    return out


def test_batched_positions_equal_the_unbatched_ones_per_scope(
    tenant, other_tenant, device_for, settings
):
    # Every round's pings are leading edges (as in bench/console_live.py): none coalesced away.
    settings.CONSOLE_COALESCE_WINDOW_S = 0.2
    settings.CONSOLE_BATCH_TICK_S = 0.05
    org = tenant.organization
    carrier_b = CarrierFactory(organization=org)
    ours = [VehicleFactory(organization=org, carrier=tenant.carrier) for _ in range(3)]
    theirs = [VehicleFactory(organization=org, carrier=carrier_b) for _ in range(3)]
    foreign = [
        VehicleFactory(organization=other_tenant.organization, carrier=other_tenant.carrier)
        for _ in range(2)
    ]
    tokens = [device_for(tenant, vehicle=v)[1] for v in ours]
    tokens += [device_for(tenant, vehicle=v, carrier=carrier_b)[1] for v in theirs]
    tokens += [device_for(other_tenant, vehicle=v)[1] for v in foreign]
    user_b = MembershipFactory(organization=org, role=Role.CARRIER_USER, carrier=carrier_b).user
    cookies = {
        "dispatcher": session_cookie(tenant.user(Role.DISPATCHER)),
        "carrier_a": session_cookie(tenant.user(Role.CARRIER_USER)),
        "carrier_b": session_cookie(user_b),
        "other_org": session_cookie(other_tenant.user(Role.DISPATCHER)),
    }
    # What the unbatched path sent: one message per event, its data `vehicle_moved_data`.
    events = []

    async def record(event):
        events.append(event)

    register_live_async("vehicle.moved", record)

    async def run():
        sockets, hellos = {}, {}
        for name, cookie in cookies.items():
            sockets[name] = communicator(cookie)
            assert (await sockets[name].connect())[0]
            hellos[name] = (await sockets[name].receive_json_from(timeout=5))["data"]["seq"]
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            for round_ in range(3):
                # All vehicles at once: their positions share ticks (and batches).
                answers = await asyncio.gather(
                    *(
                        c.get(f"/ingest/osmand/{token}/", params=fix(round_, i))
                        for i, token in enumerate(tokens)
                    )
                )
                assert {a.status_code for a in answers} == {200}
                await asyncio.sleep(0.3)  # past the coalescing window
        got = {name: await collect(s, seconds=1.5) for name, s in sockets.items()}
        for socket in sockets.values():
            await socket.disconnect()
        await fast.close_pools()
        return got, hellos

    try:
        got, hellos = async_to_sync(run)()
    finally:
        unregister_live(record)

    assert len(events) == 3 * len(tokens)
    expected = {
        "dispatcher": [e for e in events if e.organization_id == org.pk],
        "carrier_a": [e for e in events if e.carrier_id == tenant.carrier.pk],
        "carrier_b": [e for e in events if e.carrier_id == carrier_b.pk],
        "other_org": [e for e in events if e.organization_id == other_tenant.organization.pk],
    }
    assert {len(v) for v in expected.values()} == {9, 18, 6}
    for name, messages in got.items():
        items, frames = received(messages, hellos[name])
        want = [vehicle_moved_data(e.payload) for e in expected[name]]
        # The same positions, field for field, each once; per vehicle in the order they came.
        assert sorted(items, key=repr) == sorted(want, key=repr), name
        assert by_vehicle(items) == by_vehicle(want), name
        assert frames <= len(items)
    # Batched: the dispatcher's 18 positions came in fewer frames than pings.
    assert received(got["dispatcher"], hellos["dispatcher"])[1] < 18


def test_parked_positions_of_two_carriers_flush_batched_and_carrier_scoped(tenant, settings):
    settings.CONSOLE_COALESCE_WINDOW_S = 0.3
    org = tenant.organization
    carrier_b = CarrierFactory(organization=org)
    cookies = {
        "dispatcher": session_cookie(tenant.user(Role.DISPATCHER)),
        "carrier_a": session_cookie(tenant.user(Role.CARRIER_USER)),
    }

    def offer(key, carrier_id, lat):
        return realtime.publish_coalesced_sync_now(
            organization_id=org.pk,
            batch_type=VEHICLES_MOVED,
            key=key,
            carrier_id=carrier_id,
            data={"id": key, "lat": lat},
        )

    async def run():
        sockets = {}
        for name, cookie in cookies.items():
            sockets[name] = communicator(cookie)
            assert (await sockets[name].connect())[0]
            await sockets[name].receive_json_from(timeout=5)  # hello
        assert offer(1, tenant.carrier.pk, 1.0) and offer(2, carrier_b.pk, 2.0)
        assert not offer(1, tenant.carrier.pk, 1.5)  # parked
        assert not offer(2, carrier_b.pk, 2.5)  # parked
        await asyncio.sleep(0.4)
        await realtime.flush_due()  # or a socket's flusher did
        got = {name: await collect(s, seconds=1.0) for name, s in sockets.items()}
        for socket in sockets.values():
            await socket.disconnect()
        return got

    got = async_to_sync(run)()
    dispatcher = [[i["lat"] for i in m["data"]["items"]] for m in got["dispatcher"]]
    # The trailing edges share one batch (unless a flusher's tick fell between their ends).
    assert dispatcher in ([[1.0], [2.0], [1.5, 2.5]], [[1.0], [2.0], [1.5], [2.5]])
    carrier_a = [[i["lat"] for i in m["data"]["items"]] for m in got["carrier_a"]]
    assert carrier_a == [[1.0], [1.5]]  # never carrier B's vehicle, even inside a batch


def test_a_burst_larger_than_a_batch_is_split_with_consecutive_numbers(tenant):
    org = tenant.organization
    cookie = session_cookie(tenant.user(Role.DISPATCHER))
    count = realtime.BATCH_LIMIT + 7

    async def run():
        socket = communicator(cookie)
        assert (await socket.connect())[0]
        hello = await socket.receive_json_from(timeout=5)
        for n in range(count):  # one loop iteration: one tick's batch
            realtime.publish_coalesced_batched(
                organization_id=org.pk,
                batch_type=VEHICLES_MOVED,
                key=f"burst-{n}",
                carrier_id=tenant.carrier.pk,
                data={"id": n, "lat": 0.0},
            )
        messages = await collect(socket, seconds=1.5)
        await socket.disconnect()
        return hello["data"]["seq"], messages

    seq, messages = async_to_sync(run)()
    items, frames = received(messages, seq)
    assert frames == 2
    assert [i["id"] for i in items] == list(range(count))
