"""Tasks of the tenancy app (thin: re-fetch, call a service)."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime

from control_tower import services
from control_tower.tenancy.tasks import organization_task


@organization_task(name="control_tower.api_key_record_use", ignore_result=True)
def api_key_record_use(*, organization, api_key_id: int, at: str) -> bool:
    """Record when a key was last used. Runs off the request path; idempotent (only moves
    forward)."""
    return services.api_key_record_use(api_key_id=api_key_id, at=parse_datetime(at))


# The events relay's tasks, registered with the app's (autodiscovery reads this module only).
from control_tower.events.tasks import events_prune, events_relay  # noqa: E402, F401
