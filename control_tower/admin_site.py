"""The admin: superusers see every organization; an organization's owners and admins manage
their own organization's data (scoped by the same fail-closed managers as the API)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from leaflet.admin import LeafletGeoAdmin

from control_tower.tenancy.roles import ADMIN_ROLES


def is_organization_admin(request) -> bool:
    actor = getattr(request, "actor", None)
    return actor is not None and actor.api_key is None and actor.role in ADMIN_ROLES


class OrganizationAdminLoginForm(AdminAuthenticationForm):
    """Lets organization owners/admins in without Django's is_staff flag; the site's
    `has_permission` decides what they may see."""

    def confirm_login_allowed(self, user):
        if not user.is_active:
            super().confirm_login_allowed(user)


class ControlTowerAdminSite(admin.AdminSite):
    site_header = "Control Tower administration"
    site_title = "Control Tower"
    index_title = "Organization data"
    login_form = OrganizationAdminLoginForm

    def has_permission(self, request) -> bool:
        user = request.user
        return user.is_active and (user.is_superuser or is_organization_admin(request))


class TenantAdmin(admin.ModelAdmin):
    """Base admin for tenant models. Queries go through the scoped default manager, so an
    organization admin only ever sees and picks their own organization's rows. A superuser
    sees all organizations and, to add rows, first picks one (home page)."""

    list_per_page = 50

    def _allowed(self, request) -> bool:
        return request.user.is_superuser or is_organization_admin(request)

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request):
        # Adding needs one organization to own the row.
        return self._allowed(request) and getattr(request, "actor", None) is not None

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.user.is_superuser and getattr(request, "actor", None) is None:
            columns.append("organization")
        return columns

    def save_model(self, request, obj, form, change):
        if not change and obj.organization_id is None:
            obj.organization = request.actor.organization
        super().save_model(request, obj, form, change)


class TenantGeoAdmin(TenantAdmin, LeafletGeoAdmin):
    """A tenant admin with a map widget for geometry fields."""


class ReadOnlyTenantAdmin(TenantAdmin):
    """Evidence is written by the services only: nobody adds, edits or deletes it here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """A parent's history shown inline (alert transitions, a message's delivery log, a
    webhook delivery's attempts): never edited. Organization admins hold no Django model
    permissions, so viewing follows the same test as the parent."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or is_organization_admin(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
