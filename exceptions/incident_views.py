"""`POST /api/v1/incidents/`: a driver's phone (device token) or a dispatcher reports an
incident on a route. Thin: the rules are in exceptions/incidents.py."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from control_tower.api.base import TenantAPIView
from control_tower.tenancy.roles import Resource
from exceptions.api.serializers import AlertSerializer
from exceptions.incidents import IncidentKind, incident_report
from exceptions.representation import alert_data
from tracking.ingest.auth import DEVICE_KEY_OR_SESSION

IncidentBody = inline_serializer(
    "IncidentBody",
    {
        "route": serializers.IntegerField(),
        "kind": serializers.ChoiceField(choices=IncidentKind.choices),
        "note": serializers.CharField(required=False, allow_blank=True, max_length=500),
    },
)


class IncidentView(TenantAPIView):
    authentication_classes = DEVICE_KEY_OR_SESSION
    # Reporting from the road is tracking input: what devices and dispatchers may write.
    resource = Resource.TRACKING

    @extend_schema(
        operation_id="incidents_report",
        request=IncidentBody,
        responses={201: AlertSerializer},
        description=(
            "Report a breakdown, accident or other incident on a route (`{route, kind, note}`). "
            "Raises the route's `incident` alert (critical for breakdowns and accidents), or "
            "updates the unresolved one; answers with the alert. A person resolves it."
        ),
    )
    def post(self, request):
        body = request.data if isinstance(request.data, dict) else {}
        alert = incident_report(
            actor=self.actor,
            route_id=body.get("route"),
            kind=body.get("kind"),
            note=body.get("note") or "",
        )
        return Response(alert_data(alert), status=status.HTTP_201_CREATED)
