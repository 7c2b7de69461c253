"""`/api/v1/webhook-endpoints/`, `/webhook-deliveries/`, `/webhook-settings/`. Thin: parse,
call a service, answer. Rows are narrowed by the one scope (organization, then carrier)."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from control_tower.api.base import TenantAPIView, TenantViewSet
from control_tower.tenancy.roles import WRITE, Resource
from webhooks import services
from webhooks.api.serializers import (
    ReplayCountSerializer,
    ReplaySinceSerializer,
    RotateSecretSerializer,
    WebhookDeliveryDetailSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointPatchSerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
    WebhookEndpointWriteSerializer,
    WebhookSettingsSerializer,
)
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


def _parse(serializer_class, data):
    body = serializer_class(data=data or {})
    body.is_valid(raise_exception=True)
    return body.validated_data


class WebhookEndpointViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Webhook subscriptions. The secret is in the create and rotate-secret answers only."""

    model = WebhookEndpoint
    resource = Resource.WEBHOOKS
    serializer_class = WebhookEndpointSerializer
    filterset_fields = ["enabled", "carrier"]
    search_fields = ["name", "url"]
    ordering_fields = ["name", "created_at", "consecutive_failures"]
    ordering = ["name", "id"]

    def _with_secret(self, endpoint, secret, code=status.HTTP_200_OK):
        data = WebhookEndpointWithSecretSerializer(endpoint).data
        data["secret"] = secret
        return Response(data, status=code)

    @extend_schema(
        request=WebhookEndpointWriteSerializer, responses={201: WebhookEndpointWithSecretSerializer}
    )
    def create(self, request):
        data = _parse(WebhookEndpointWriteSerializer, request.data)
        endpoint, secret = services.endpoint_create(
            actor=self.actor,
            name=data["name"],
            url=data["url"],
            event_types=data["event_types"],
            carrier_id=data.get("carrier"),
            enabled=data["enabled"],
        )
        return self._with_secret(endpoint, secret, status.HTTP_201_CREATED)

    def _update(self, request, body_class):
        endpoint = self.get_object()
        data = _parse(body_class, request.data)
        if "carrier" in data:
            data["carrier_id"] = data.pop("carrier")
        services.endpoint_update(actor=self.actor, endpoint=endpoint, **data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(request=WebhookEndpointWriteSerializer, responses=WebhookEndpointSerializer)
    def update(self, request, pk=None):
        return self._update(request, WebhookEndpointWriteSerializer)

    @extend_schema(request=WebhookEndpointPatchSerializer, responses=WebhookEndpointSerializer)
    def partial_update(self, request, pk=None):
        return self._update(request, WebhookEndpointPatchSerializer)

    @extend_schema(request=RotateSecretSerializer, responses=WebhookEndpointWithSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        data = _parse(RotateSecretSerializer, request.data)
        endpoint, secret = services.endpoint_rotate_secret(
            endpoint=self.get_object(), overlap_hours=data.get("overlap_hours")
        )
        return self._with_secret(endpoint, secret)

    @extend_schema(request=None, responses=WebhookEndpointSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        endpoint = services.endpoint_enable(endpoint=self.get_object())
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        delivery = services.endpoint_send_test(endpoint=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=ReplaySinceSerializer, responses={202: ReplayCountSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        data = _parse(ReplaySinceSerializer, request.data)
        count = services.endpoint_replay_since(endpoint=self.get_object(), since=data["since"])
        return Response({"replayed": count}, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=DeliveryStatus.choices)
    event_type = filters.CharFilter()
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type"]


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The delivery log, newest first; the detail carries the payload and every attempt."""

    model = WebhookDelivery
    resource = Resource.WEBHOOKS
    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter
    search_fields = ["event_id", "ordering_key", "message_id"]
    ordering_fields = ["created_at", "id", "finished_at", "attempts"]
    ordering = ["-id"]

    def get_serializer_class(self):
        if self.action == "retrieve":
            return WebhookDeliveryDetailSerializer
        return WebhookDeliverySerializer

    def optimize_queryset(self, queryset):
        if self.action == "retrieve":
            return queryset.prefetch_related("attempt_log")
        return queryset

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        replay = services.delivery_replay(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(replay).data, status=status.HTTP_202_ACCEPTED)


class WebhookSettingsView(TenantAPIView):
    """The organization's allow list of private destinations: owners and admins only (and
    API keys with `webhooks:write` that are not bound to a carrier)."""

    resource = Resource.WEBHOOKS
    serializer_class = WebhookSettingsSerializer

    def check_permissions(self, request):
        super().check_permissions(request)
        actor = getattr(self, "actor", None)
        if actor is None:
            return
        by_key = (
            actor.api_key is not None
            and actor.carrier_id is None
            and actor.can(Resource.WEBHOOKS, WRITE)
        )
        if not (actor.is_admin or by_key):
            raise PermissionDenied("Only owners and admins manage the webhook settings.")

    @extend_schema(responses=WebhookSettingsSerializer)
    def get(self, request):
        return Response(WebhookSettingsSerializer(services.settings_for_organization()).data)

    @extend_schema(request=WebhookSettingsSerializer, responses=WebhookSettingsSerializer)
    def patch(self, request):
        data = _parse(WebhookSettingsSerializer, request.data)
        found = services.settings_update(allowed_private_hosts=data["allowed_private_hosts"])
        return Response(WebhookSettingsSerializer(found).data)
