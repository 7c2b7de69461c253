"""`/api/v1/alerts/`: list and read alerts, and work them (acknowledge, assign, snooze, resolve).
Thin: parse the body, call the service, answer with the alert."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Value, When
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from control_tower.api.base import TenantViewSet
from control_tower.models import Membership
from control_tower.tenancy.roles import Resource
from exceptions import services
from exceptions.api.serializers import (
    AlertAssignSerializer,
    AlertNoteSerializer,
    AlertPersonSerializer,
    AlertResolveSerializer,
    AlertSerializer,
    AlertSnoozeSerializer,
    AlertSuggestionsSerializer,
)
from exceptions.models import (
    SEVERITY_ORDER,
    UNRESOLVED_STATES,
    Alert,
    AlertKind,
    AlertState,
    Severity,
)
from exceptions.suggestions import alert_suggestions


class AlertFilter(filters.FilterSet):
    kind = filters.MultipleChoiceFilter(choices=AlertKind.choices)
    severity = filters.MultipleChoiceFilter(choices=Severity.choices)
    state = filters.MultipleChoiceFilter(choices=AlertState.choices)
    open = filters.BooleanFilter(method="filter_open", help_text="true: unresolved alerts only.")
    since = filters.IsoDateTimeFilter(
        field_name="raised_at", lookup_expr="gte", help_text="Raised at or after this time."
    )

    class Meta:
        model = Alert
        fields = ["kind", "severity", "state", "route", "stop", "vehicle", "carrier", "shipment"]

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        if value:
            return queryset.filter(state__in=UNRESOLVED_STATES)
        return queryset.exclude(state__in=UNRESOLVED_STATES)


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Alerts raised by the exception rules, newest first. docs/EXCEPTIONS.md."""

    model = Alert
    resource = Resource.ALERTS
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    search_fields = ["title", "subject_id"]
    # `severity_rank` orders low < medium < high < critical (the names would sort alphabetically).
    ordering_fields = ["raised_at", "last_seen_at", "started_at", "severity_rank", "state"]
    ordering = ["-raised_at", "-id"]

    def optimize_queryset(self, queryset):
        rank = Case(
            *(When(severity=value, then=Value(i)) for i, value in enumerate(SEVERITY_ORDER)),
            output_field=IntegerField(),
        )
        return queryset.select_related("acknowledged_by", "assigned_to", "resolved_by").annotate(
            severity_rank=rank
        )

    def _answer(self, alert):
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)

    def _body(self, serializer_class):
        body = serializer_class(data=self.request.data or {})
        body.is_valid(raise_exception=True)
        return body.validated_data

    @extend_schema(request=AlertNoteSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        data = self._body(AlertNoteSerializer)
        return self._answer(
            services.alert_acknowledge(actor=self.actor, alert_id=pk, note=data["note"])
        )

    @extend_schema(request=AlertAssignSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        data = self._body(AlertAssignSerializer)
        alert = services.alert_assign(
            actor=self.actor, alert_id=pk, assignee_id=data["assignee"], note=data["note"]
        )
        return self._answer(alert)

    @extend_schema(request=AlertSnoozeSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def snooze(self, request, pk=None):
        data = self._body(AlertSnoozeSerializer)
        alert = services.alert_snooze(
            actor=self.actor, alert_id=pk, until=data["until"], note=data["note"]
        )
        return self._answer(alert)

    @extend_schema(request=AlertResolveSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        data = self._body(AlertResolveSerializer)
        alert = services.alert_resolve(
            actor=self.actor,
            alert_id=pk,
            resolution_code=data["resolution_code"],
            note=data["note"],
        )
        return self._answer(alert)

    @extend_schema(responses=AlertSuggestionsSerializer)
    @action(detail=True, methods=["get"], filter_backends=[])
    def suggestions(self, request, pk=None):
        """What the console offers to do about this alert (exceptions/suggestions.py)."""
        return Response(alert_suggestions(actor=self.actor, alert=self.get_object()))

    @extend_schema(responses=AlertPersonSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def assignees(self, request, pk=None):
        """The members this alert may be assigned to (their role works alerts; a carrier user
        only their own carrier's), for the console's "assign" choice. A carrier user is offered
        the members of their own carrier only."""
        alert = self.get_object()
        members = (
            Membership.objects.filter(organization_id=alert.organization_id)
            .select_related("user")
            .order_by("user__email", "user_id")
        )
        if self.actor.carrier_id is not None:
            # A carrier user may not list the organization's members: only their carrier's.
            members = members.filter(carrier_id=self.actor.carrier_id)
        people = [
            {"id": m.user_id, "email": m.user.email or m.user.get_username()}
            for m in members
            if m.user.is_active and services.may_work_alerts(m, alert)
        ]
        return Response(people)
