from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from carriers import services
from carriers.api.serializers import (
    CarrierSerializer,
    DeviceSerializer,
    DeviceWithTokenSerializer,
    DriverSerializer,
    VehicleSerializer,
)
from carriers.models import Carrier, Device, Driver, Vehicle
from control_tower.api.base import TenantModelViewSet, TenantViewSet
from control_tower.tenancy.roles import Resource


class CarrierViewSet(TenantModelViewSet):
    """Carriers and their SLA policy. Carrier users see their own carrier only."""

    model = Carrier
    resource = Resource.CARRIERS
    serializer_class = CarrierSerializer
    filterset_fields = ["kind", "is_active"]
    search_fields = ["name", "code"]
    ordering_fields = ["name", "code", "created_at"]


class DriverViewSet(TenantModelViewSet):
    model = Driver
    resource = Resource.FLEET
    serializer_class = DriverSerializer
    filterset_fields = ["carrier", "is_active"]
    search_fields = ["name", "phone", "email", "external_id"]
    ordering_fields = ["name", "created_at"]


class VehicleViewSet(TenantModelViewSet):
    model = Vehicle
    resource = Resource.FLEET
    serializer_class = VehicleSerializer
    filterset_fields = ["carrier", "kind", "is_active"]
    search_fields = ["plate"]
    ordering_fields = ["plate", "created_at", "capacity_parcels"]


class DeviceFilter(filters.FilterSet):
    revoked = filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Device
        fields = ["carrier", "driver", "vehicle", "kind"]


class DeviceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Phones and trackers. The token is shown once, on creation or rotation; DELETE revokes
    it (the device and its history stay)."""

    model = Device
    resource = Resource.FLEET
    serializer_class = DeviceSerializer
    filterset_class = DeviceFilter
    search_fields = ["name", "external_id", "token_prefix"]
    ordering_fields = ["name", "last_seen_at", "created_at"]

    @extend_schema(responses={201: DeviceWithTokenSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, token = services.device_create(
            organization=self.actor.organization, **serializer.validated_data
        )
        return self._with_token(device, token, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=DeviceWithTokenSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-token")
    def rotate_token(self, request, pk=None):
        device, token = services.device_rotate_token(device=self.get_object())
        return self._with_token(device, token, status.HTTP_200_OK)

    @extend_schema(responses={204: None}, summary="Revoke a device's token")
    def destroy(self, request, *args, **kwargs):
        services.device_revoke(device=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _with_token(self, device, token, code):
        data = DeviceSerializer(device, context=self.get_serializer_context()).data
        data["token"] = token
        return Response(data, status=code)
