"""Schedule derived work after the transaction commits, without ever failing the write."""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, **kwargs) -> None:
    """`task.apply_async(kwargs=...)` once the current transaction commits. `task` may be the
    task or its registered name: services name the tasks they queue, so they never import the
    tasks module (which imports them).

    If the broker is unreachable the error is logged and swallowed: the committed data is the
    source of truth and periodic sweeps redo derived work, so a Redis outage never turns an
    accepted write into an error for the client.

    The same task with the same arguments is queued once per transaction: a stop arrived at and
    completed in one transaction recomputes its route once. (Tasks are idempotent, so this only
    saves work.)
    """
    name = task if isinstance(task, str) else task.name
    if not first_in_transaction((name, tuple(sorted(kwargs.items())))):
        return

    def send() -> None:
        try:
            if isinstance(task, str):
                current_app.send_task(task, kwargs=kwargs, retry=False)
            else:
                task.apply_async(kwargs=kwargs, retry=False)
        except Exception:  # noqa: BLE001 - any broker failure is tolerated by design
            logger.warning("could not enqueue %s; derived work will be redone", name, exc_info=True)

    transaction.on_commit(send)


def first_in_transaction(key) -> bool:
    """Whether `key` is new in the current transaction. The set is tied to the connection's
    list of commit callbacks: Django replaces that list after a commit or a rollback, so a new
    transaction (or one whose callbacks were rolled back) starts with an empty set."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return True  # on_commit runs at once: nothing to merge with
    state = getattr(connection, "_ct_enqueued", None)
    if state is None or state[0] is not connection.run_on_commit:
        state = (connection.run_on_commit, set())
        connection._ct_enqueued = state
    if key in state[1]:
        return False
    state[1].add(key)
    return True
