"""One Celery queue per kind of work, opt-in (CELERY_QUEUES_PER_KIND=1; docs/SCALING.md), so a
deployment can give each kind its own workers and hosts: a burst of ETA recomputes then never
waits behind a webhook backlog. Off (the default), every task goes to CELERY_TASK_DEFAULT_QUEUE,
where one `celery worker` serves them all.

Kept free of Django imports: settings.py reads it."""

from __future__ import annotations

# Task name patterns (Celery matches globs) -> kind. Tasks not listed (partition upkeep, the
# outbox prune, API key bookkeeping) stay on the default queue, which every worker consumes.
KIND_OF_TASKS = {
    "control_tower.events_relay": "events",  # outbox -> live pushes, exceptions, fan-out
    "exceptions.*": "events",
    "tracking.eta_*": "eta",
    "notifications.*": "notifications",
    "webhooks.*": "webhooks",
    "sla.*": "reports",
}
KINDS = ("events", "eta", "notifications", "webhooks", "reports")


def queue_of_kind(default_queue: str, kind: str) -> str:
    # Named after the default queue so two deployments on one Redis keep apart (tests do too).
    return f"{default_queue}.{kind}"


def task_routes(default_queue: str) -> dict[str, dict[str, str]]:
    """CELERY_TASK_ROUTES for one queue per kind."""
    return {
        pattern: {"queue": queue_of_kind(default_queue, kind)}
        for pattern, kind in KIND_OF_TASKS.items()
    }
