"""Schedule derived work after the transaction commits, without ever failing the write."""

from __future__ import annotations

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue_on_commit(task, **kwargs) -> None:
    """`task.apply_async(kwargs=...)` once the current transaction commits.

    If the broker is unreachable the error is logged and swallowed: the committed data is the
    source of truth and periodic sweeps redo derived work, so a Redis outage never turns an
    accepted write into an error for the client.
    """

    def send() -> None:
        try:
            task.apply_async(kwargs=kwargs, retry=False)
        except Exception:  # noqa: BLE001 - any broker failure is tolerated by design
            logger.warning(
                "could not enqueue %s; derived work will be redone", task.name, exc_info=True
            )

    transaction.on_commit(send)
