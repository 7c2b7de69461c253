from django.contrib import admin, messages

from control_tower import services
from control_tower.admin_site import TenantAdmin, is_organization_admin
from control_tower.models import ApiKey, Membership, Organization


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
    autocomplete_fields = ["user"]
    list_select_related = ["user", "carrier"]


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
