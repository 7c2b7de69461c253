"""`/api/v1/notifications/` (the message log), `/notification-settings/`,
`/notification-triggers/`, `/notification-templates/` (+ `preview/`), `/notification-contacts/`.
Thin: parse, check access (Resource.NOTIFICATIONS), call a service, serialize."""

from __future__ import annotations

from django.http import Http404
from django.template import TemplateSyntaxError
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response

from control_tower.api.base import TenantAPIView, TenantModelViewSet, TenantViewSet
from control_tower.tenancy.carrier_scope import visible_to
from control_tower.tenancy.roles import Resource
from notifications.api.serializers import (
    ContactPreferenceInputSerializer,
    ContactPreferenceSerializer,
    NotificationDetailSerializer,
    NotificationSerializer,
    NotificationSettingsSerializer,
    NotificationTemplateSerializer,
    TemplatePreviewSerializer,
    TriggerSettingSerializer,
)
from notifications.models import (
    Audience,
    Channel,
    ContactPreference,
    Notification,
    NotificationTemplate,
    PreferenceSource,
    Status,
    Trigger,
    TriggerSetting,
)
from notifications.policy import settings_for, trigger_config, trigger_configs
from notifications.rendering import SAMPLE_CONTEXT, render_sources, template_sources
from notifications.segments import sms_length
from notifications.services.preferences import contact_preference_set
from tracking.models import Shipment

TEMPLATE_PREVIEW = inline_serializer(
    "TemplatePreview",
    {
        "subject": serializers.CharField(),
        "text": serializers.CharField(),
        "html": serializers.CharField(),
        "sms": inline_serializer(
            "SmsLength",
            {
                "encoding": serializers.CharField(),
                "units": serializers.IntegerField(),
                "segments": serializers.IntegerField(),
                "per_segment": serializers.IntegerField(),
            },
            required=False,
            help_text="SMS only: the rendered text's length in segments.",
        ),
    },
)


class NotificationFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=Status.choices)
    channel = filters.MultipleChoiceFilter(choices=Channel.choices)
    trigger = filters.MultipleChoiceFilter(choices=Trigger.choices)
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Notification
        fields = ["shipment", "status", "channel", "trigger", "audience"]


class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Every message, newest first, with its delivery log on the detail. docs/NOTIFICATIONS.md."""

    model = Notification
    resource = Resource.NOTIFICATIONS
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    ordering_fields = ["created_at", "sent_at", "status"]
    ordering = ["-created_at", "-id"]

    def get_serializer_class(self):
        return NotificationDetailSerializer if self.action == "retrieve" else NotificationSerializer

    def optimize_queryset(self, queryset):
        if self.actor.carrier_id is not None:
            # Messages to staff are for the organization's staff roles only.
            queryset = queryset.filter(audience=Audience.CUSTOMER)
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("logs")
        return queryset


class ShipmentNotificationViewSet(mixins.ListModelMixin, TenantViewSet):
    """`/shipments/{id}/notifications/`: the messages about one shipment, oldest first (a
    shipment the caller cannot see answers 404, like a missing one)."""

    model = Notification
    resource = Resource.NOTIFICATIONS
    serializer_class = NotificationSerializer
    filter_backends: list = []
    ordering = ["created_at", "id"]

    def optimize_queryset(self, queryset):
        shipment_id = self.kwargs.get("id")
        if not visible_to(self.actor, Shipment).filter(pk=shipment_id).exists():
            raise NotFound("No such shipment.")
        if self.actor.carrier_id is not None:
            queryset = queryset.filter(audience=Audience.CUSTOMER)
        return queryset.filter(shipment_id=shipment_id).order_by("created_at", "id")


class OrganizationPolicyOnly:
    """Settings, triggers, templates and contact records are the organization's policy:
    carrier-bound actors (carrier users, carrier keys) read only their carrier's messages,
    never the policy (a carrier key with every scope must not rewrite the organization's
    templates)."""

    def check_permissions(self, request):
        super().check_permissions(request)
        if getattr(self, "actor", None) is not None and self.actor.carrier_id is not None:
            raise PermissionDenied("The notification policy is the organization's.")


class OrganizationPolicyView(OrganizationPolicyOnly, TenantAPIView):
    resource = Resource.NOTIFICATIONS


class NotificationSettingsView(OrganizationPolicyView):
    """The organization's notification policy (one object)."""

    @extend_schema(responses=NotificationSettingsSerializer)
    def get(self, request):
        return Response(NotificationSettingsSerializer(settings_for(self.actor.organization)).data)

    @extend_schema(request=NotificationSettingsSerializer, responses=NotificationSettingsSerializer)
    def patch(self, request):
        body = NotificationSettingsSerializer(
            settings_for(self.actor.organization), data=request.data, partial=True
        )
        body.is_valid(raise_exception=True)
        body.save()
        return Response(body.data)


def _trigger_data(config) -> dict:
    return {
        "trigger": config.trigger,
        "enabled": config.enabled,
        "channels": list(config.channels),
        "parameters": config.parameters,
    }


class TriggerSettingListView(OrganizationPolicyView):
    @extend_schema(responses=TriggerSettingSerializer(many=True))
    def get(self, request):
        return Response([_trigger_data(c) for c in trigger_configs(self.actor.organization.pk)])


class TriggerSettingDetailView(OrganizationPolicyView):
    def _trigger(self, trigger: str) -> str:
        if trigger not in Trigger.values:
            raise Http404("No such trigger.")
        return trigger

    @extend_schema(responses=TriggerSettingSerializer)
    def get(self, request, trigger: str):
        config = trigger_config(self.actor.organization.pk, self._trigger(trigger))
        return Response(_trigger_data(config))

    @extend_schema(request=TriggerSettingSerializer, responses=TriggerSettingSerializer)
    def patch(self, request, trigger: str):
        trigger = self._trigger(trigger)
        body = TriggerSettingSerializer(data=request.data, context={"trigger": trigger})
        body.is_valid(raise_exception=True)
        current = trigger_config(self.actor.organization.pk, trigger)
        data = body.validated_data
        TriggerSetting.objects.update_or_create(
            trigger=trigger,
            defaults={
                "enabled": data.get("enabled", current.enabled),
                "channels": data.get("channels", list(current.channels)),
                "parameters": {**current.parameters, **data.get("parameters", {})},
            },
        )
        return Response(_trigger_data(trigger_config(self.actor.organization.pk, trigger)))


class NotificationTemplateViewSet(OrganizationPolicyOnly, TenantModelViewSet):
    """The organization's template overrides; without one, the shipped template is used."""

    model = NotificationTemplate
    resource = Resource.NOTIFICATIONS
    serializer_class = NotificationTemplateSerializer
    filterset_fields = ["trigger", "channel", "language"]
    ordering = ["trigger", "channel", "language"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        if NotificationTemplate.objects.filter(
            trigger=data["trigger"], channel=data["channel"], language=data["language"]
        ).exists():
            raise serializers.ValidationError(
                {"trigger": "An override for this trigger, channel and language exists."}
            )
        super().perform_create(serializer)

    @extend_schema(request=TemplatePreviewSerializer, responses=TEMPLATE_PREVIEW)
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def preview(self, request):
        """Render a trigger/channel/language (the override, the shipped template, or the
        sources given) with sample or given variables; SMS length for SMS."""
        body = TemplatePreviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        sources = template_sources(
            self.actor.organization.pk, data["trigger"], data["channel"], data["language"]
        )
        for part in ("subject", "text", "html"):
            if part in data:
                sources[part] = data[part]
        organization = self.actor.organization
        context = {
            **SAMPLE_CONTEXT,
            "organization_name": organization.name,
            "primary_color": organization.primary_color,
            "language": data["language"],
            **data["variables"],
        }
        try:
            rendered = render_sources(sources, channel=data["channel"], context=context)
        except TemplateSyntaxError as exc:
            raise serializers.ValidationError({"text": f"Template error: {exc}"}) from exc
        answer = {"subject": rendered.subject, "text": rendered.text, "html": rendered.html}
        if data["channel"] == Channel.SMS:
            answer["sms"] = sms_length(rendered.text).as_dict()
        return Response(answer)


class ContactPreferenceViewSet(
    OrganizationPolicyOnly, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet
):
    """Consent and opt-out records; POST records one (the address is validated and
    normalized: E.164 phones, e-mails with the domain lower-cased)."""

    model = ContactPreference
    resource = Resource.NOTIFICATIONS
    serializer_class = ContactPreferenceSerializer
    filterset_fields = ["channel", "state", "source"]
    search_fields = ["address"]
    ordering = ["-at", "-id"]

    @extend_schema(request=ContactPreferenceInputSerializer, responses=ContactPreferenceSerializer)
    def create(self, request):
        body = ContactPreferenceInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        preference = contact_preference_set(
            organization=self.actor.organization,
            channel=data["channel"],
            address=data["address"],
            state=data["state"],
            source=PreferenceSource.API,
        )
        return Response(ContactPreferenceSerializer(preference).data, status=201)
