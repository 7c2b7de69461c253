"""Pages of the portal. Thin: check who is asking, hand the page its configuration; the data
comes from the console API (portal/api/) and the live socket (portal/consumers.py)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from control_tower.tenancy.roles import READ, WRITE, Resource
from exceptions.models import ResolutionCode
from exceptions.services import PERSON_RESOLUTION_CODES


@login_required
def console(request):
    """The dispatcher console: live map and route list of the acting organization. Drivers and
    people without an organization get 403 (their phone app is their view)."""
    actor = request.actor
    if actor is None or not actor.can(Resource.CONSOLE, READ):
        raise PermissionDenied("The console is for dispatchers, managers and carrier users.")
    organization = actor.organization
    config = {
        "api": {
            "snapshot": "/api/v1/console/snapshot/",
            "route": "/api/v1/console/routes/{id}/",
            "stop": "/api/v1/console/stops/{id}/",
            "search": "/api/v1/console/search/",
            "streets": "/api/v1/console/streets/",
            "reassign": "/api/v1/stops/{id}/reassign/",
            "alerts": "/api/v1/alerts/",
            "alert": "/api/v1/alerts/{id}/",
            "alertAction": "/api/v1/alerts/{id}/{action}/",
            "customerActions": "/api/v1/shipments/{id}/customer-actions/",
        },
        "socketPath": "/ws/v1/events/",
        "tileUrl": settings.CONSOLE_TILE_URL,
        "tileAttribution": "© OpenStreetMap contributors",
        "center": list(settings.LEAFLET_CONFIG.get("DEFAULT_CENTER", (-29.95, -71.30))),
        "zoom": settings.LEAFLET_CONFIG.get("DEFAULT_ZOOM", 12),
        "organization": {"name": organization.name, "time_zone": organization.time_zone},
        "role": actor.role,
        # The API has the last word (carrier users: their own carrier's routes only).
        "canReassign": actor.can(Resource.CONSOLE, WRITE),
        "canReadAlerts": actor.can(Resource.ALERTS, READ),
        "canWorkAlerts": actor.can(Resource.ALERTS, WRITE),
        # The codes a person may resolve with, as the API checks them.
        "resolutionCodes": [
            {"value": code, "label": ResolutionCode(code).label} for code in PERSON_RESOLUTION_CODES
        ],
    }
    return render(request, "portal/console.html", {"console_config": config})
