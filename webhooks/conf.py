"""The webhooks' settings, with their defaults (override any of them in Django settings).
docs/WEBHOOKS.md has the table."""

from __future__ import annotations

from django.conf import settings

DEFAULTS = {
    # One attempt (connect + send + read at most WEBHOOKS_BODY_EXCERPT bytes) takes at most this.
    "WEBHOOKS_TIMEOUT_S": 10.0,
    # Backoff: a random delay in [0, min(base * 2^(n-1), max)] after the n-th failure (full
    # jitter), retried until WEBHOOKS_RETRY_WINDOW_S after the delivery was created, then dead.
    "WEBHOOKS_RETRY_BASE_S": 5.0,
    "WEBHOOKS_RETRY_MAX_S": 3600.0,
    "WEBHOOKS_RETRY_WINDOW_S": 24 * 3600.0,
    # An endpoint failing without a single success for this long, with at least this many
    # failed attempts in a row, is disabled and its organization's admins are told.
    "WEBHOOKS_DISABLE_AFTER_S": 72 * 3600.0,
    "WEBHOOKS_DISABLE_MIN_FAILURES": 10,
    # The dispatcher: deliveries claimed per batch, sent concurrently (at most one at a time
    # per endpoint and ordering key), the claim's lease and one task run's time budget.
    "WEBHOOKS_BATCH": 200,
    "WEBHOOKS_CONCURRENCY": 32,
    "WEBHOOKS_LEASE_S": 60.0,
    "WEBHOOKS_BUDGET_S": 20.0,
    # How long a process keeps an organization's endpoints in memory for the fan-out.
    "WEBHOOKS_ENDPOINT_CACHE_S": 5.0,
    # Response bytes kept in the delivery log.
    "WEBHOOKS_BODY_EXCERPT": 2048,
    # Rotation: how long the old secret keeps signing next to the new one by default.
    "WEBHOOKS_ROTATION_OVERLAP_H": 24,
}


def get(name: str):
    return getattr(settings, name, DEFAULTS[name])
