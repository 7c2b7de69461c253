"""API of the tenancy app: who am I, the organization, its members, invitations and API keys."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.response import Response

from control_tower import services
from control_tower.api.base import TenantAPIView, TenantViewSet
from control_tower.api.serializers import TenantModelSerializer
from control_tower.models import ApiKey, Invitation, Membership, Organization
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
            # The customer tracking page (docs/TRACKING_LINKS.md).
            "accent_color",
            "support_url",
            "tracking_host",
            "tracking_link_days",
            "tracking_live_minutes",
            "tracking_show_driver_photo",
            "default_language",
            "reschedule_days_ahead",
            "reschedule_weekdays",
            "reschedule_windows",
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


class InvitationSerializer(TenantModelSerializer):
    """An invitation as the inviting organization sees it: what it asked for, never anything
    about the account (if any) behind the e-mail."""

    status = serializers.CharField(read_only=True, help_text="pending, accepted, revoked, expired")

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "carrier", "status", "created_at", "expires_at"]
        read_only_fields = ["id", "status", "created_at", "expires_at"]


class InvitationCreatedSerializer(InvitationSerializer):
    link = serializers.CharField(
        read_only=True, help_text="Shown once (and e-mailed where e-mail is configured)."
    )

    class Meta(InvitationSerializer.Meta):
        fields = [*InvitationSerializer.Meta.fields, "link"]


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
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """People in the organization and their roles. People join by invitation
    (`/invitations/`), never by being added: membership needs the person's consent."""

    model = Membership
    resource = Resource.MEMBERSHIPS
    serializer_class = MembershipSerializer
    filterset_fields = ["role", "carrier"]
    search_fields = ["user__email", "user__first_name", "user__last_name"]
    ordering_fields = ["created_at", "role"]

    def optimize_queryset(self, queryset):
        return queryset.select_related("user")

    def http_method_not_allowed(self, request, *args, **kwargs):
        if request.method == "POST":  # the old way of adding someone: say what replaced it
            raise exceptions.MethodNotAllowed(
                "POST",
                detail="People join by invitation: POST /api/v1/invitations/ with their e-mail "
                "and role; they become members when they accept.",
            )
        return super().http_method_not_allowed(request, *args, **kwargs)

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


class InvitationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Invitations to join the organization. The reply to a create is the same whether or not
    an account exists for the e-mail; its `link` is shown once. DELETE revokes."""

    model = Invitation
    resource = Resource.MEMBERSHIPS
    serializer_class = InvitationSerializer
    filterset_fields = ["role", "carrier"]
    search_fields = ["email"]
    ordering_fields = ["created_at", "expires_at"]

    @extend_schema(responses={201: InvitationCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation, link = services.invitation_create(
            actor=self.actor, base_url=request.build_absolute_uri("/"), **serializer.validated_data
        )
        data = InvitationSerializer(invitation).data
        data["link"] = link
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None}, summary="Revoke an invitation (it stays listed)")
    def destroy(self, request, *args, **kwargs):
        services.invitation_revoke(invitation=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


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
