"""Roles and what each may do. One table, read by the API permission class, the admin and the
pages, so the answer to "can a dispatcher edit a carrier?" lives in exactly one place."""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    DISPATCHER = "dispatcher", "Dispatcher"
    OPS_MANAGER = "ops_manager", "Ops manager"
    CARRIER_USER = "carrier_user", "Carrier user"
    DRIVER = "driver", "Driver"


class Resource(models.TextChoices):
    ORGANIZATION = "organization"
    MEMBERSHIPS = "memberships"
    API_KEYS = "api_keys"
    CARRIERS = "carriers"
    FLEET = "fleet"  # drivers, vehicles, devices
    HUBS = "hubs"
    SHIPMENTS = "shipments"
    ROUTES = "routes"  # routes and stops
    # Working a route from the road: start it, arrive at a stop, complete, fail or skip it.
    # Separate from ROUTES so that a driver (and their phone) may report progress on their own
    # routes without being able to create, edit or re-plan any.
    ROUTE_PROGRESS = "route_progress"
    TRACKING = "tracking"  # pings, positions, scans, proof of delivery (custody: with shipments)
    # The dispatcher console (page, snapshot, details, search, live socket): read to watch,
    # write to reassign stops between routes. Rows are narrowed like everywhere else.
    CONSOLE = "console"
    # Exceptions (alerts): read to see them, write to acknowledge, assign, snooze and resolve.
    ALERTS = "alerts"
    # Notification settings, templates and the message log (docs/NOTIFICATIONS.md).
    NOTIFICATIONS = "notifications"
    # Webhook subscriptions and their delivery logs (docs/WEBHOOKS.md).
    WEBHOOKS = "webhooks"
    # SLA scorecards, drill-downs, exports and planning history (docs/REPORTS.md): read to see
    # them, write to manage the scheduled scorecard e-mails and recompute a day's roll-ups.
    REPORTS = "reports"


READ, WRITE = "read", "write"
_RW = frozenset({READ, WRITE})
_R = frozenset({READ})
_NONE: frozenset[str] = frozenset()

_ADMIN_GRANTS = {resource: _RW for resource in Resource}

GRANTS: dict[str, dict[str, frozenset[str]]] = {
    Role.OWNER: _ADMIN_GRANTS,
    Role.ADMIN: _ADMIN_GRANTS,
    Role.DISPATCHER: {
        Resource.ORGANIZATION: _R,
        Resource.MEMBERSHIPS: _NONE,
        Resource.API_KEYS: _NONE,
        Resource.CARRIERS: _R,
        Resource.FLEET: _RW,
        Resource.HUBS: _R,
        Resource.SHIPMENTS: _RW,
        Resource.ROUTES: _RW,
        Resource.ROUTE_PROGRESS: _RW,
        Resource.TRACKING: _RW,
        Resource.CONSOLE: _RW,
        Resource.ALERTS: _RW,
        Resource.NOTIFICATIONS: _R,
        Resource.WEBHOOKS: _NONE,
        Resource.REPORTS: _R,
    },
    Role.OPS_MANAGER: {
        Resource.ORGANIZATION: _R,
        Resource.MEMBERSHIPS: _R,
        Resource.API_KEYS: _NONE,
        Resource.CARRIERS: _RW,
        Resource.FLEET: _R,
        Resource.HUBS: _RW,
        Resource.SHIPMENTS: _R,
        Resource.ROUTES: _R,
        Resource.ROUTE_PROGRESS: _R,
        Resource.TRACKING: _R,
        Resource.CONSOLE: _R,
        Resource.ALERTS: _R,
        Resource.NOTIFICATIONS: _R,
        Resource.WEBHOOKS: _R,
        # Ops managers are who the scorecards are for.
        Resource.REPORTS: _RW,
    },
    # Carrier users see only rows of their own carrier (tenancy/carrier_scope.py) and update
    # the progress of their own routes; they cannot create or re-plan, but may move a stop
    # between two of their carrier's routes from the console.
    Role.CARRIER_USER: {
        Resource.ORGANIZATION: _R,
        Resource.MEMBERSHIPS: _NONE,
        Resource.API_KEYS: _NONE,
        Resource.CARRIERS: _R,
        Resource.FLEET: _R,
        Resource.HUBS: _R,
        Resource.SHIPMENTS: _R,
        Resource.ROUTES: _R,
        Resource.ROUTE_PROGRESS: _R,
        # Their own carrier's scans and proofs of delivery (narrowed like everything else).
        Resource.TRACKING: _RW,
        Resource.CONSOLE: _RW,
        # Their own carrier's alerts: they are the ones who can act on them.
        Resource.ALERTS: _RW,
        # The messages sent about their carrier's shipments; webhooks bound to their carrier.
        Resource.NOTIFICATIONS: _R,
        Resource.WEBHOOKS: _RW,
        # Their own carrier's scorecard and drill-downs only (narrowed like everything else).
        Resource.REPORTS: _R,
    },
    # People with the driver role read their own routes; their phone posts with a device token.
    Role.DRIVER: {
        Resource.ORGANIZATION: _R,
        Resource.MEMBERSHIPS: _NONE,
        Resource.API_KEYS: _NONE,
        Resource.CARRIERS: _NONE,
        Resource.FLEET: _NONE,
        Resource.HUBS: _R,
        Resource.SHIPMENTS: _NONE,
        Resource.ROUTES: _R,
        # Their own routes only (tenancy/carrier_scope.py): start, arrive, complete, fail, skip.
        Resource.ROUTE_PROGRESS: _RW,
        Resource.TRACKING: _NONE,
        # Their phone app is their view: the organization's live console is not for them.
        Resource.CONSOLE: _NONE,
        Resource.ALERTS: _NONE,
        Resource.NOTIFICATIONS: _NONE,
        Resource.WEBHOOKS: _NONE,
        Resource.REPORTS: _NONE,
    },
}

ADMIN_ROLES = frozenset({Role.OWNER, Role.ADMIN})


class Scope(models.TextChoices):
    """API key scopes: `<resource>:<read|write>`. Write implies read."""

    ORGANIZATION_READ = "organization:read"
    CARRIERS_READ = "carriers:read"
    CARRIERS_WRITE = "carriers:write"
    FLEET_READ = "fleet:read"
    FLEET_WRITE = "fleet:write"
    HUBS_READ = "hubs:read"
    HUBS_WRITE = "hubs:write"
    SHIPMENTS_READ = "shipments:read"
    SHIPMENTS_WRITE = "shipments:write"
    ROUTES_READ = "routes:read"
    ROUTES_WRITE = "routes:write"
    TRACKING_READ = "tracking:read"
    TRACKING_WRITE = "tracking:write"
    ALERTS_READ = "alerts:read"
    ALERTS_WRITE = "alerts:write"
    NOTIFICATIONS_READ = "notifications:read"
    NOTIFICATIONS_WRITE = "notifications:write"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    REPORTS_READ = "reports:read"
    REPORTS_WRITE = "reports:write"


def role_allows(role: str, resource: str, action: str) -> bool:
    return action in GRANTS.get(role, {}).get(resource, _NONE)


# Resources that API keys reach through another resource's scopes (there is no key scope of
# their own): a key reads the console with `routes:read` and reassigns with `routes:write`.
KEY_SCOPE_OF = {Resource.CONSOLE: Resource.ROUTES, Resource.ROUTE_PROGRESS: Resource.ROUTES}


def scopes_allow(scopes: list[str] | frozenset[str], resource: str, action: str) -> bool:
    resource = KEY_SCOPE_OF.get(resource, resource)
    if f"{resource}:write" in scopes:
        return True
    return action == READ and f"{resource}:read" in scopes
