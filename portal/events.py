"""Console events built from the database after commit (docs/REALTIME.md).

`publish_route_changed` is what every writer calls when a route's list line may have changed
(its status, one of its stops' status, a reassignment): the summary is read once the
transaction has committed, so it always describes committed state.
"""

from __future__ import annotations

import logging

from django.db import transaction

from control_tower.models import Organization
from control_tower.realtime import publish_sync_now
from control_tower.tenancy.scope import organization_scope

logger = logging.getLogger(__name__)

ROUTE_CHANGED = "route.changed"


def route_changed_now(*, organization_id: int, route_id: int) -> None:
    """Read the route's summary and send `route.changed` (to the organization and to the
    route's carrier). A route deleted meanwhile sends nothing."""
    from portal.selectors import route_summary_for
    from tracking.models import Route

    organization = Organization.objects.get(pk=organization_id)
    with organization_scope(organization):
        route = Route.objects.filter(pk=route_id).first()
        if route is None:
            return
        summary = route_summary_for(route)
    publish_sync_now(
        organization_id=organization_id,
        carrier_id=route.carrier_id,
        event=ROUTE_CHANGED,
        data=summary,
    )


class _RouteChangedOnCommit:
    """The on-commit callback; recognisable, so one transaction pushes each route once."""

    def __init__(self, organization_id: int, route_id: int) -> None:
        self.route_key = (organization_id, route_id)

    def __call__(self) -> None:
        organization_id, route_id = self.route_key
        try:
            route_changed_now(organization_id=organization_id, route_id=route_id)
        except Exception:  # noqa: BLE001 - the write is committed; a lost push is re-synced
            logger.warning("could not publish route.changed for %s", route_id, exc_info=True)


def publish_route_changed(route) -> None:
    """After the current transaction commits, push the route's fresh summary (`route.changed`).
    Outside a transaction it is sent at once. Several calls for one route in one transaction
    (a stop event that also starts its route) send one message. Failures are logged."""
    callback = _RouteChangedOnCommit(route.organization_id, route.pk)
    connection = transaction.get_connection()
    pending = (entry[1] for entry in connection.run_on_commit)
    if any(getattr(cb, "route_key", None) == callback.route_key for cb in pending):
        return
    transaction.on_commit(callback)
