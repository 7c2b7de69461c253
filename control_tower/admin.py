from django.contrib import admin, messages

from control_tower import services
from control_tower.admin_site import TenantAdmin, is_organization_admin
from control_tower.models import ApiKey, Invitation, Membership, Organization


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "is_active", "created_at"]
    search_fields = ["name", "slug"]
    list_filter = ["is_active"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        actor = getattr(request, "actor", None)
        return queryset.filter(pk=actor.organization.pk) if actor else queryset.none()

    def has_module_permission(self, request):
        return request.user.is_superuser or is_organization_admin(request)

    has_view_permission = has_change_permission = lambda self, request, obj=None: (
        request.user.is_superuser or is_organization_admin(request)
    )

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["slug", "is_active"]


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    list_display = ["user", "role", "carrier", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "user__username"]
    list_select_related = ["user", "carrier"]

    def has_add_permission(self, request):
        # People join by invitation (their consent), not by being picked from every account
        # of the platform; superusers keep the escape hatch.
        return request.user.is_superuser and super().has_add_permission(request)

    def get_readonly_fields(self, request, obj=None):
        return ["user"] if obj is not None else []

    def get_autocomplete_fields(self, request):
        return ["user"] if request.user.is_superuser else []


@admin.register(Invitation)
class InvitationAdmin(TenantAdmin):
    list_display = ["email", "role", "carrier", "status", "created_at", "expires_at"]
    list_filter = ["role"]
    search_fields = ["email"]
    list_select_related = ["carrier"]
    readonly_fields = ["status", "created_at", "expires_at", "accepted_at", "revoked_at"]
    fields = ["email", "role", "carrier", *readonly_fields]
    actions = ["revoke"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        invitation, link = services.invitation_create(
            actor=request.actor,
            email=obj.email,
            role=obj.role,
            carrier=obj.carrier,
            base_url=request.build_absolute_uri("/"),
        )
        obj.pk = invitation.pk
        messages.warning(request, f"Send this link to {invitation.email}; it is shown once: {link}")

    @admin.action(description="Revoke selected invitations")
    def revoke(self, request, queryset):
        for invitation in queryset:
            services.invitation_revoke(invitation=invitation)


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdmin):
    list_display = ["name", "prefix", "carrier", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "scopes", "carrier", "expires_at", *readonly_fields]
    actions = ["revoke"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, raw = services.api_key_create(
            actor=request.actor,
            name=obj.name,
            scopes=obj.scopes,
            carrier=obj.carrier,
            expires_at=obj.expires_at,
        )
        obj.pk = key.pk
        messages.warning(request, f"Copy this API key now, it will not be shown again: {raw}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            services.api_key_revoke(api_key=key)


# The outbox's read-only admin lives with the events package.
from control_tower.events import admin as _events_admin  # noqa: E402, F401
