"""The relay's settings, with their defaults (override any of them in Django settings)."""

from __future__ import annotations

from django.conf import settings

DEFAULTS = {
    # Rows claimed per batch, and how long a claim lasts before another worker may take the
    # rows over (a worker that died mid-batch).
    "EVENTS_RELAY_BATCH": 200,
    "EVENTS_RELAY_LEASE_S": 60,
    # Claimed rows delivered per transaction (a savepoint per handler inside): larger chunks
    # commit less often but hold their row locks longer, and past 64 handlers that write, a
    # chunk overflows PostgreSQL's per-backend subtransaction cache (slower snapshots for all).
    "EVENTS_RELAY_CHUNK": 32,
    # One task run delivers batches for at most this long, then queues the next run behind the
    # tasks that waited meanwhile: short, so that in a one-process worker the webhook and
    # notification dispatchers get their turn while events keep coming.
    "EVENTS_RELAY_BUDGET_S": 2.0,
    # Retries: base * 2^(attempts-1), capped; after max attempts the event is dead.
    "EVENTS_RETRY_BASE_S": 2.0,
    "EVENTS_RETRY_MAX_S": 600.0,
    "EVENTS_MAX_ATTEMPTS": 12,
    # Delivered rows are kept this long (replays, audits), then pruned.
    "EVENTS_RETENTION_DAYS": 7,
}


def get(name: str):
    return getattr(settings, name, DEFAULTS[name])
