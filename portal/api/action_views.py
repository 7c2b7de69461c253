"""Console API, the dispatcher's lookups (docs/API.md "Dispatcher console"): stop details,
search, offline streets. Thin: parse, check access, call one selector, answer. Reassigning a
stop is an action of the stops API (`POST /api/v1/stops/<id>/reassign/`, tracking/api/views.py).

Who: the `console` grants of tenancy/roles.py (owner, admin, dispatcher, ops manager, carrier
users; not drivers, not device tokens: 403). Rows of another organization (or, for a carrier
user, another carrier) are 404, indistinguishable from missing ones.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response

from control_tower.api.base import TenantAPIView
from control_tower.errors import DomainError
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.roles import Resource
from portal.stop_details import (
    SEARCH_MIN_CHARS,
    shipments_search,
    stop_details,
)
from portal.streets import StreetsQueryError, parse_streets_query, streets_geojson
from tracking.models import Stop

STREETS_MAX_AGE_S = 3600  # the network changes only when someone re-imports it


class ConsoleView(TenantAPIView):
    """Console reads: `console` read in the one grants table (tenancy/roles.py); API keys with
    `routes:read`; drivers and devices never. Rows are narrowed by `visible_to`."""

    resource = Resource.CONSOLE


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(message, fields={field: [message]}, code="validation_error")


class StopDetailsView(ConsoleView):
    """`GET /api/v1/console/stops/<id>/`: one stop for the side panel."""

    @extend_schema(operation_id="console_stop_details", responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        stop = (
            visible_to(self.actor, Stop)
            .select_related("route__carrier", "route__driver", "route__vehicle")
            .filter(pk=pk)
            .first()
        )
        if stop is None:
            raise exceptions.NotFound("No such stop.")
        return Response(stop_details(stop, request))


class SearchView(ConsoleView):
    """`GET /api/v1/console/search/?q=`: shipments by reference or barcode."""

    @extend_schema(
        operation_id="console_search",
        parameters=[OpenApiParameter("q", str, required=True)],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        text = (request.query_params.get("q") or "").strip()
        if len(text) < SEARCH_MIN_CHARS:
            raise _invalid(
                "q", f"Type at least {SEARCH_MIN_CHARS} characters of a reference or barcode."
            )
        if len(text) > 64:
            raise _invalid("q", "References and barcodes are at most 64 characters.")
        results = shipments_search(actor=self.actor, text=text)
        return Response({"results": results})


class StreetsView(ConsoleView):
    """`GET /api/v1/console/streets/?bbox=&zoom=`: road lines for the offline base map (shared,
    read by every console user; not tenant data)."""

    @extend_schema(
        operation_id="console_streets",
        parameters=[
            OpenApiParameter("bbox", str, required=True, description="minlon,minlat,maxlon,maxlat"),
            OpenApiParameter("zoom", int, required=True),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        try:
            query = parse_streets_query(
                request.query_params.get("bbox"), request.query_params.get("zoom")
            )
        except StreetsQueryError as exc:
            raise _invalid(exc.field, str(exc)) from None
        response = Response(streets_geojson(query))
        response["Cache-Control"] = f"public, max-age={STREETS_MAX_AGE_S}"
        return response
