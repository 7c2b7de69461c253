from django.contrib import admin, messages

from carriers import services
from carriers.models import SLA_POLICY_FIELDS, Carrier, Device, Driver, Vehicle
from control_tower.admin_site import TenantAdmin


@admin.register(Carrier)
class CarrierAdmin(TenantAdmin):
    list_display = ["name", "code", "kind", "is_active", "sla_on_time_target_pct"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "code"]
    fieldsets = [
        (None, {"fields": ["code", "name", "kind", "contact_email", "contact_phone", "is_active"]}),
        (
            "SLA policy",
            {"fields": SLA_POLICY_FIELDS},
        ),
    ]


@admin.register(Driver)
class DriverAdmin(TenantAdmin):
    list_display = ["name", "carrier", "phone", "external_id", "is_active"]
    list_filter = ["carrier", "is_active"]
    search_fields = ["name", "phone", "email", "external_id"]
    list_select_related = ["carrier"]
    raw_id_fields = ["user"]


@admin.register(Vehicle)
class VehicleAdmin(TenantAdmin):
    list_display = ["plate", "carrier", "kind", "capacity_parcels", "is_active"]
    list_filter = ["carrier", "kind", "is_active"]
    search_fields = ["plate"]
    list_select_related = ["carrier"]


@admin.register(Device)
class DeviceAdmin(TenantAdmin):
    list_display = ["name", "kind", "carrier", "driver", "vehicle", "last_seen_at", "revoked_at"]
    # "Revoked: empty" lists the phones still signed in (driver app sessions included).
    list_filter = ["kind", "carrier", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "external_id", "token_prefix", "driver__name"]
    list_select_related = ["carrier", "driver", "vehicle"]
    readonly_fields = ["token_prefix", "last_seen_at", "revoked_at", "created_at"]
    actions = ["revoke", "rotate"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        fields = {
            name: form.cleaned_data.get(name)
            for name in ("carrier", "driver", "vehicle", "name", "kind", "external_id")
        }
        device, token = services.device_create(organization=request.actor.organization, **fields)
        obj.pk = device.pk
        messages.warning(request, f"Device token (shown once, configure it now): {token}")

    @admin.action(description="Revoke the tokens of the selected devices")
    def revoke(self, request, queryset):
        for device in queryset:
            services.device_revoke(device=device)

    @admin.action(description="Rotate the token (shows the new one)")
    def rotate(self, request, queryset):
        for device in queryset:
            device, token = services.device_rotate_token(device=device)
            messages.warning(request, f"{device.name}: new token {token}")
