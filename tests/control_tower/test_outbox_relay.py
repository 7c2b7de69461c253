"""The durable outbox relay (control_tower/events/relay.py): at least once, in order per
aggregate, a failing subscriber holding back only its aggregate, retries and dead events,
idempotent under a worker crash between handling and marking, pruning, the read-only admin,
and the real Celery worker delivering after commit. The subscribers write real rows."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from control_tower.events import (
    EventType,
    backfill,
    catalog,
    emit,
    make_event,
    register_event_type,
    registry,
    relay,
)
from control_tower.events.models import OutboxEvent, OutboxReceipt
from control_tower.events.registry import register_live, subscribe, unregister_live, unsubscribe
from control_tower.tenancy.roles import Role
from tests.conftest import wait_for

TYPE = "alert.relay_test"
SINK = "events_test_sink"


@pytest.fixture
def test_type():
    register_event_type(
        EventType(TYPE, 1, "route", durable=True, description="relay tests"), replace=True
    )
    yield TYPE
    catalog.EVENT_TYPES.pop(TYPE, None)


def create_sink() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {SINK} (id bigserial PRIMARY KEY, event_id uuid, "
            "subscriber text, aggregate text, n int)"
        )


def drop_sink() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SINK}")


@pytest.fixture
def sink(db):
    create_sink()  # inside the test's transaction: rolled back with it
    return SINK


def sink_rows(subscriber: str | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event_id, subscriber, aggregate, n FROM {SINK} "
            "WHERE %s::text IS NULL OR subscriber = %s ORDER BY id",
            [subscriber, subscriber],
        )
        return cursor.fetchall()


def writer(name: str, *, fail=lambda event, calls: False):
    """A durable subscriber that records each event it handles in the sink, then (when `fail`
    says so) raises: its write must vanish with the failed attempt."""
    calls: list = []

    def handler(event):
        calls.append(event.id)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {SINK} (event_id, subscriber, aggregate, n) VALUES (%s, %s, %s, %s)",
                [event.id, name, event.aggregate_id, event.payload["n"]],
            )
        if fail(event, calls):
            raise RuntimeError(f"{name} could not handle {event.payload['n']}")

    handler.calls = calls
    return handler


@pytest.fixture
def subscribers():
    names = []

    def add(name, handler, pattern=TYPE):
        names.append(name)
        subscribe(pattern, handler, name=name)
        return handler

    yield add
    for name in names:
        unsubscribe(name)


def emit_test(org, aggregate, n):
    event = make_event(
        TYPE, organization_id=org.pk, carrier_id=None, aggregate_id=aggregate, payload={"n": n}
    )
    emit(event)
    return event


def ns(rows, aggregate) -> list[int]:
    return [n for _e, _s, a, n in rows if a == aggregate]


def outbox(event) -> OutboxEvent:
    return OutboxEvent.dangerously_unscoped.get(event_id=event.id)


pytestmark = pytest.mark.django_db


def test_every_subscriber_gets_every_event_once_in_order_per_aggregate(
    org, sink, test_type, subscribers
):
    subscribers("steady", writer("steady"))
    subscribers("audit", writer("audit"))
    for aggregate, n in [("A", 1), ("B", 1), ("A", 2), ("B", 2), ("A", 3)]:
        emit_test(org, aggregate, n)
    assert relay.relay_pending() == 5
    for name in ("steady", "audit"):
        rows = sink_rows(name)
        assert ns(rows, "A") == [1, 2, 3] and ns(rows, "B") == [1, 2]
    assert not OutboxEvent.dangerously_unscoped.filter(delivered_at__isnull=True).exists()
    assert OutboxReceipt.objects.filter(subscriber__in=("steady", "audit")).count() == 10
    assert relay.relay_pending() == 0  # nothing twice


def test_a_failing_subscriber_holds_back_its_aggregate_only_and_is_retried(
    org, sink, test_type, subscribers
):
    steady = subscribers("steady", writer("steady"))
    # Fails on A1 the first time, after writing its row (that write must not survive).
    flaky = subscribers(
        "flaky", writer("flaky", fail=lambda e, calls: e.payload["n"] == 1 and len(calls) == 1)
    )
    a1, _b1, a2, _b2 = (
        emit_test(org, "A", 1),
        emit_test(org, "B", 1),
        emit_test(org, "A", 2),
        emit_test(org, "B", 2),
    )
    relay.relay_batch()
    failed = outbox(a1)
    assert failed.delivered_at is None and failed.attempts == 1
    assert "flaky" in failed.last_error and failed.next_attempt_at > timezone.now()
    assert outbox(a2).delivered_at is None  # held back behind A1
    assert ns(sink_rows("flaky"), "B") == [1, 2]  # the other aggregate went on
    assert ns(sink_rows("flaky"), "A") == []

    relay.relay_batch()  # A1 is not due yet, and A2 may not overtake it
    assert outbox(a2).delivered_at is None

    OutboxEvent.dangerously_unscoped.filter(pk=failed.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    relay.relay_pending()
    assert ns(sink_rows("flaky"), "A") == [1, 2]
    # "steady" had handled A1 on the first attempt: its receipt kept it from a second time.
    assert ns(sink_rows("steady"), "A") == [1, 2]
    assert len([c for c in steady.calls if c == a1.id]) == 1
    assert len([c for c in flaky.calls if c == a1.id]) == 2
    assert outbox(a1).delivered_at is not None and outbox(a1).attempts == 2


def test_a_worker_dying_between_handling_and_marking_does_not_handle_twice(
    org, sink, test_type, subscribers, monkeypatch
):
    """Handling, receipts and the delivered mark commit together (one chunk transaction): a
    worker dying after the handlers ran and before the mark leaves nothing half done, and the
    worker taking the rows over handles each event once per subscriber."""
    subscribers("steady", writer("steady"))
    subscribers("audit", writer("audit"))
    event, other = emit_test(org, "A", 1), emit_test(org, "B", 1)

    def die(ids):
        assert len(sink_rows()) == 4  # both subscribers handled both events ...
        raise SystemExit("worker killed")

    monkeypatch.setattr(relay, "_mark_delivered", die)
    with pytest.raises(SystemExit):
        relay.relay_batch()
    assert sink_rows() == []  # ... and it all went with the chunk's transaction
    assert not OutboxReceipt.objects.filter(event__event_id__in=[event.id, other.id]).exists()
    assert outbox(event).delivered_at is None and outbox(other).delivered_at is None
    monkeypatch.undo()

    assert relay.relay_batch() == (0, 0)  # still leased by the dead worker
    OutboxEvent.dangerously_unscoped.filter(event_id__in=[event.id, other.id]).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )
    assert relay.relay_batch() == (2, 2)  # the lease expired: taken over and re-delivered
    assert sorted((s, a) for _e, s, a, _n in sink_rows()) == [
        ("audit", "A"),
        ("audit", "B"),
        ("steady", "A"),
        ("steady", "B"),
    ]
    assert outbox(event).delivered_at is not None and outbox(event).attempts == 1


def test_claims_skip_what_another_worker_holds_and_keep_aggregates_in_order(org, test_type):
    a1, b1, a2 = emit_test(org, "A", 1), emit_test(org, "B", 1), emit_test(org, "A", 2)
    first = relay.claim(limit=1)
    assert first == [outbox(a1).pk]
    second = relay.claim()
    # A2 waits for A1 (leased by the first worker); B1 is free.
    assert outbox(b1).pk in second and outbox(a2).pk not in second


def test_an_event_that_keeps_failing_goes_dead_and_stops_blocking(
    org, sink, test_type, subscribers, settings
):
    settings.EVENTS_MAX_ATTEMPTS = 2
    subscribers("broken", writer("broken", fail=lambda e, calls: e.payload["n"] == 1))
    a1, a2 = emit_test(org, "A", 1), emit_test(org, "A", 2)
    for _attempt in range(2):
        relay.relay_batch()
        OutboxEvent.dangerously_unscoped.filter(event_id=a1.id).update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
    dead = outbox(a1)
    assert dead.dead_at is not None and dead.attempts == 2 and dead.state == "dead"
    relay.relay_pending()
    assert outbox(a2).delivered_at is not None
    assert outbox(a1).delivered_at is None  # dead stays dead until requeued
    assert relay.requeue_dead([a1.id]) == 1
    assert outbox(a1).state == "pending"


def test_old_delivered_events_are_pruned_and_the_rest_kept(org, test_type):
    old, recent, pending, dead = (emit_test(org, "A", n) for n in range(4))
    now = timezone.now()
    OutboxEvent.dangerously_unscoped.filter(event_id=old.id).update(
        delivered_at=now - timedelta(days=8)
    )
    OutboxEvent.dangerously_unscoped.filter(event_id=recent.id).update(delivered_at=now)
    OutboxEvent.dangerously_unscoped.filter(event_id=dead.id).update(
        dead_at=now - timedelta(days=30)
    )
    assert relay.prune_delivered() == 1
    left = set(OutboxEvent.dangerously_unscoped.values_list("event_id", flat=True))
    assert left == {recent.id, pending.id, dead.id}


def test_the_admin_shows_the_outbox_read_only(tenant, other_tenant, client, test_type):
    ours = emit_test(tenant.organization, "A", 1)
    emit_test(other_tenant.organization, "A", 2)
    client.force_login(tenant.user(Role.OWNER))
    listing = client.get("/admin/control_tower/outboxevent/")
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    row = outbox(ours)
    assert client.get(f"/admin/control_tower/outboxevent/{row.pk}/change/").status_code == 200
    assert client.get("/admin/control_tower/outboxevent/add/").status_code == 403
    client.post(f"/admin/control_tower/outboxevent/{row.pk}/delete/", {"post": "yes"})
    assert OutboxEvent.dangerously_unscoped.filter(pk=row.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_committed_event_reaches_its_subscriber_through_the_celery_worker(
    org, test_type, subscribers, celery_worker
):
    create_sink()
    try:
        subscribers("steady", writer("steady"))
        with transaction.atomic():
            event = emit_test(org, "A", 1)
            emit_test(org, "A", 2)
        # Nothing ran this process's relay: the worker got the task enqueued on commit.
        wait_for(lambda: len(sink_rows("steady")) == 2, timeout=20)
        assert ns(sink_rows("steady"), "A") == [1, 2]
        wait_for(lambda: outbox(event).delivered_at is not None)

        # A rolled-back transaction leaves nothing for the worker.
        with pytest.raises(RuntimeError), transaction.atomic():
            emit_test(org, "A", 3)
            raise RuntimeError
        assert OutboxEvent.dangerously_unscoped.count() == 2
    finally:
        drop_sink()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_emit_is_autocommit(org, test_type):
    seen = []

    def handler(event):
        seen.append(event.id)

    register_live(TYPE, handler)
    try:
        event = emit_test(org, "A", 1)
        assert seen == [event.id]  # live handlers ran at once
        # The row is committed: another connection (a relay thread) sees it.
        found = []
        thread = threading.Thread(
            target=lambda: (
                found.append(OutboxEvent.dangerously_unscoped.filter(event_id=event.id).exists()),
                connections.close_all(),
            )
        )
        thread.start()
        thread.join()
        assert found == [True]
    finally:
        unregister_live(handler)


def test_backfilled_events_reach_only_the_subscribers_that_take_them(
    org, sink, test_type, subscribers
):
    """History recorded after the fact (`backfill()`) is kept and delivered to reports, but an
    alerting subscriber (`backfill=False`) passes it over; live events reach both."""
    subscribers("report", writer("report"))
    subscribe(TYPE, writer("alerting"), name="alerting", backfill=False)
    try:
        with backfill():
            past = emit_test(org, "A", 1)
        now = emit_test(org, "A", 2)
        assert outbox(past).backfill and not outbox(now).backfill
        assert outbox(past).as_event().as_dict()["backfill"] is True
        assert relay.relay_pending() == 2
        assert ns(sink_rows("report"), "A") == [1, 2]
        assert ns(sink_rows("alerting"), "A") == [2]
        assert outbox(past).delivered_at is not None  # passed over is done, not pending
    finally:
        unsubscribe("alerting")


def test_a_failing_handler_in_a_chunk_rolls_back_only_itself(
    org, sink, test_type, subscribers, django_capture_on_commit_callbacks
):
    """One transaction for the chunk, a savepoint per handler: the failing handler's write,
    receipt and on_commit callback vanish; the other subscriber's effects on the same event,
    and every other event of the chunk, are kept; the failed aggregate's later events wait."""
    committed: list[tuple] = []

    def with_callback(name, fail=lambda e, calls: False):
        inner = writer(name, fail=fail)

        def handler(event):
            transaction.on_commit(lambda: committed.append((name, event.payload["n"])))
            inner(event)

        handler.calls = inner.calls
        return handler

    subscribers("steady", with_callback("steady"))
    subscribers("flaky", with_callback("flaky", fail=lambda e, calls: e.aggregate_id == "C"))
    events = [emit_test(org, aggregate, n) for n in (1, 2) for aggregate in "ABCDE"]
    c1, c2 = (e for e in events if e.aggregate_id == "C")

    with django_capture_on_commit_callbacks(execute=True):
        assert relay.relay_batch() == (10, 8)

    # The failure rolled back flaky's write on C1 (and it never ran on C2) ...
    assert ns(sink_rows("flaky"), "C") == []
    ours = OutboxReceipt.objects.filter(subscriber__in=("steady", "flaky"))
    assert list(ours.filter(event__event_id=c1.id).values_list("subscriber", flat=True)) == [
        "steady"
    ]
    failed = outbox(c1)
    assert failed.attempts == 1 and failed.last_error.startswith("flaky: RuntimeError")
    # ... C2 was given back, unhandled, for after C1 ...
    assert outbox(c2).leased_until is None and outbox(c2).delivered_at is None
    assert ns(sink_rows("steady"), "C") == [1]
    # ... and everything else was delivered, in order per aggregate, by both subscribers.
    for name in ("steady", "flaky"):
        for aggregate in "ABDE":
            assert ns(sink_rows(name), aggregate) == [1, 2]
    assert all(outbox(e).delivered_at is not None for e in events if e.aggregate_id != "C")
    # Callbacks registered by handlers ran at the chunk's commit, except the rolled-back one.
    assert ("steady", 1) in committed and ("flaky", 1) in committed
    assert len(committed) == 8 * 2 + 1  # 8 events x 2 subscribers, and steady on C1

    OutboxEvent.dangerously_unscoped.filter(pk=failed.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    subscribers("flaky", writer("flaky"))  # fixed
    assert relay.relay_pending() == 2
    assert ns(sink_rows("flaky"), "C") == [1, 2]
    assert ns(sink_rows("steady"), "C") == [1, 2]  # its receipt spared it C1 a second time


def test_a_failure_holds_its_aggregate_back_in_the_later_chunks_of_the_batch(
    org, sink, test_type, subscribers, settings
):
    settings.EVENTS_RELAY_CHUNK = 2
    subscribers("flaky", writer("flaky", fail=lambda e, calls: e.payload["n"] == 1))
    a1, b2, a2, b3 = (
        emit_test(org, "A", 1),
        emit_test(org, "B", 2),
        emit_test(org, "A", 2),
        emit_test(org, "B", 3),
    )
    assert relay.relay_batch() == (4, 2)  # chunks [A1, B2] and [A2, B3]
    assert outbox(a1).attempts == 1 and outbox(a2).delivered_at is None
    assert outbox(a2).leased_until is None  # given back by the second chunk
    assert outbox(b2).delivered_at is not None and outbox(b3).delivered_at is not None
    assert ns(sink_rows("flaky"), "B") == [2, 3] and ns(sink_rows("flaky"), "A") == []


def test_a_chunk_of_fifty_events_costs_a_bounded_number_of_queries(
    org, test_type, monkeypatch, settings
):
    """Per event only the handlers' savepoints; the claim, the row fetch, the receipts read,
    the receipts' INSERT and the delivered marks are one statement each for the chunk."""
    settings.EVENTS_RELAY_CHUNK = 50
    monkeypatch.setattr(registry, "_subscribers", {})  # only the two below
    handled: list = []
    subscribe(TYPE, lambda event: handled.append(("one", event.id)), name="one")
    subscribe(TYPE, lambda event: handled.append(("two", event.id)), name="two")
    subscribe("shipment.*", lambda event: handled.append(("other", event.id)), name="other")
    for n in range(50):
        emit_test(org, f"R{n % 7}", n)

    with CaptureQueriesContext(connection) as queries:
        assert relay.relay_batch(limit=50) == (50, 50)

    statements = [q["sql"] for q in queries.captured_queries]
    savepoints = [s for s in statements if s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    others = [s for s in statements if s not in savepoints]
    # One savepoint (and its release) per event and interested subscriber, plus the chunk's.
    assert 2 * 50 * 2 <= len(savepoints) <= 2 * (50 * 2 + 2)
    assert len(others) <= 8, others  # claim (3), rows, receipts read, INSERT, UPDATE
    assert sum("INSERT INTO" in s and "outboxreceipt" in s for s in others) == 1
    assert len(handled) == 100 and not [h for h in handled if h[0] == "other"]
    assert OutboxReceipt.objects.filter(subscriber__in=("one", "two")).count() == 100
    assert not OutboxEvent.dangerously_unscoped.filter(delivered_at__isnull=True).exists()


def test_a_stalled_worker_does_not_handle_rows_taken_over_after_its_lease_ran_out(
    org, sink, test_type, subscribers
):
    subscribers("steady", writer("steady"))
    a1, a2 = emit_test(org, "A", 1), emit_test(org, "A", 2)
    stalled = relay.claim()  # this worker stalls before delivering
    OutboxEvent.dangerously_unscoped.filter(pk__in=stalled).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )
    assert relay.relay_batch() == (2, 2)  # another worker took both over

    held_back: set[tuple] = set()
    assert relay.deliver_chunk(stalled, held_back) == 0  # the stalled worker wakes up
    assert ns(sink_rows("steady"), "A") == [1, 2]  # handled once, by the other worker
    assert held_back == {(org.pk, "route", "A")}
    assert outbox(a1).attempts == 1 and outbox(a2).attempts == 1
