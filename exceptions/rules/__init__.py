"""Detection rules: one module per alert kind, each naming its condition once.

Event-driven rules (`predicted_late`, `failed_attempt`, `pod_far`) are durable subscribers
registered in exceptions/apps.py; they read the current rows, not the event's copy, so a
replayed or late event decides from the latest state (idempotent by construction). Time-based
rules (`signal_lost`, `stalled`, `route_not_started`, `battery_low`) are evaluated by
exceptions/sweep.py with one set-based query each per organization.

Every rule raises and clears through exceptions.services (`alert_raise` / `alert_clear`): one
unresolved alert per (kind, subject), severity only going up.
"""
