"""`@organization_task`: Celery tasks that run inside one organization's scope."""

from __future__ import annotations

import functools
import logging

from celery import shared_task

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope

logger = logging.getLogger(__name__)


def organization_task(*task_args, **task_kwargs):
    """Declare a task that takes `organization_id` and runs with that organization in scope.

    The wrapped function receives `organization=` (the fresh row). A task for an unknown or
    deactivated organization does nothing (and says so in the log): tasks never trust their
    payload, they re-fetch.
    """

    def decorator(func):
        @functools.wraps(func)
        def run(*args, organization_id: int, **kwargs):
            organization = Organization.objects.filter(pk=organization_id, is_active=True).first()
            if organization is None:
                logger.warning(
                    "%s: organization %s is gone or inactive", func.__name__, organization_id
                )
                return None
            with organization_scope(organization):
                return func(*args, organization=organization, **kwargs)

        return shared_task(*task_args, **task_kwargs)(run)

    return decorator
