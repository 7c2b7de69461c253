"""API of the tenancy app: who am I, the organization, its members and API keys."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from control_tower import services
from control_tower.api.base import TenantAPIView, TenantViewSet
from control_tower.api.serializers import TenantModelSerializer
from control_tower.models import ApiKey, Membership, Organization
from control_tower.tenancy.roles import Resource, Role, Scope

# --- serializers -------------------------------------------------------------------------


class OrganizationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = [
            "id",
            "slug",
            "name",
            "time_zone",
            "logo",
            "primary_color",
            "support_phone",
            "support_email",
            "ping_retention_days",
            "pod_geofence_m",
            "created_at",
        ]
        read_only_fields = ["id", "slug", "created_at"]


class MeSerializer(serializers.Serializer):
    user = serializers.DictField()
    organization = OrganizationSerializer()
    role = serializers.CharField(allow_null=True)
    carrier = serializers.IntegerField(allow_null=True)
    permissions = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class MembershipSerializer(TenantModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    name = serializers.CharField(source="user.get_full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "carrier", "created_at"]
        read_only_fields = ["id", "email", "name", "created_at"]


class MembershipCreateSerializer(TenantModelSerializer):
    email = serializers.EmailField(write_only=True)
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        style={"input_type": "password"},
        help_text="For a new person only; without it they set one via password reset.",
    )
    first_name = serializers.CharField(write_only=True, required=False, allow_blank=True)
    last_name = serializers.CharField(write_only=True, required=False, allow_blank=True)

    class Meta:
        model = Membership
        fields = ["email", "password", "first_name", "last_name", "role", "carrier"]


class ApiKeySerializer(TenantModelSerializer):
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=Scope.choices), allow_empty=False
    )
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "carrier",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_is_active(self, key: ApiKey) -> bool:
        return key.is_usable()

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once: store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


# --- views -------------------------------------------------------------------------------


class MeView(TenantAPIView):
    resource = Resource.ORGANIZATION

    @extend_schema(responses=MeSerializer, summary="Who is calling, for which organization")
    def get(self, request):
        actor = self.actor
        user = actor.user
        granted = {}
        for resource in Resource:
            granted[resource.value] = [a for a in ("read", "write") if actor.can(resource, a)]
        return Response(
            {
                "user": (
                    {"id": user.pk, "email": user.email, "name": user.get_full_name()}
                    if actor.api_key is None
                    else {"api_key": actor.api_key.prefix, "name": actor.api_key.name}
                ),
                "organization": OrganizationSerializer(actor.organization).data,
                "role": actor.role,
                "carrier": actor.carrier_id,
                "permissions": granted,
            }
        )


class OrganizationView(TenantAPIView):
    """The caller's organization: name, time zone and branding."""

    resource = Resource.ORGANIZATION

    @extend_schema(responses=OrganizationSerializer)
    def get(self, request):
        return Response(OrganizationSerializer(self.actor.organization).data)

    @extend_schema(request=OrganizationSerializer, responses=OrganizationSerializer)
    def patch(self, request):
        serializer = OrganizationSerializer(
            self.actor.organization, data=request.data, partial=True
        )
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """People in the organization and their roles."""

    model = Membership
    resource = Resource.MEMBERSHIPS
    serializer_class = MembershipSerializer
    filterset_fields = ["role", "carrier"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    ordering_fields = ["created_at", "role"]

    def optimize_queryset(self, queryset):
        return queryset.select_related("user")

    def get_serializer_class(self):
        return MembershipCreateSerializer if self.action == "create" else MembershipSerializer

    @extend_schema(request=MembershipCreateSerializer, responses={201: MembershipSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_create(actor=self.actor, **serializer.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        membership = serializer.instance
        data = serializer.validated_data
        role = data.get("role", membership.role)
        carrier = data.get("carrier", membership.carrier)
        if role != Role.CARRIER_USER and "carrier" not in data:
            carrier = None
        serializer.instance = services.membership_update(
            actor=self.actor, membership=membership, role=role, carrier=carrier
        )

    def perform_destroy(self, instance):
        services.membership_delete(actor=self.actor, membership=instance)


class ApiKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Organization API keys. The key itself is returned once, on creation; DELETE revokes."""

    model = ApiKey
    resource = Resource.API_KEYS
    serializer_class = ApiKeySerializer
    filterset_fields = ["carrier"]
    ordering_fields = ["created_at", "last_used_at", "name"]

    @extend_schema(responses={201: ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, raw = services.api_key_create(actor=self.actor, **serializer.validated_data)
        data = ApiKeySerializer(key).data
        data["key"] = raw
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None}, summary="Revoke an API key (it stays listed)")
    def destroy(self, request, *args, **kwargs):
        services.api_key_revoke(api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
