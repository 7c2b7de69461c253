from django.contrib import admin

# Ingest evidence (positions, scans, custody) and the learned ETA state (models, calibrations)
# live in their own modules; imported here because Django's autodiscovery reads only this one.
from control_tower.admin_site import TenantGeoAdmin
from tracking import admin_eta, admin_ingest, admin_links  # noqa: F401 - registers their models
from tracking.models import Hub, Route, Shipment, ShipmentEvent, Stop, StopShipment


@admin.register(Hub)
class HubAdmin(TenantGeoAdmin):
    list_display = ["name", "code", "kind", "is_active"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "code", "address"]


class ShipmentEventInline(admin.TabularInline):
    model = ShipmentEvent
    extra = 0
    can_delete = False
    fields = ["occurred_at", "from_status", "to_status", "source", "actor_label", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Shipment)
class ShipmentAdmin(TenantGeoAdmin):
    list_display = ["reference", "barcode", "status", "carrier", "city", "promised_window_end"]
    list_filter = ["status", "carrier", "hub"]
    search_fields = ["reference", "barcode", "recipient_name", "address_line1"]
    list_select_related = ["carrier"]
    # Status moves only through the status service (API / console), never by editing.
    readonly_fields = ["status", "status_changed_at", "created_at", "updated_at"]
    inlines = [ShipmentEventInline]
    date_hierarchy = "created_at"


class StopShipmentInline(admin.TabularInline):
    model = StopShipment
    extra = 0
    raw_id_fields = ["shipment"]


class StopInline(admin.TabularInline):
    model = Stop
    extra = 0
    fields = [
        "sequence",
        "status",
        "address",
        "window_start",
        "window_end",
        "planned_arrival",
        "eta",
        "actual_arrival",
    ]
    readonly_fields = ["status", "eta", "actual_arrival"]
    show_change_link = True


@admin.register(Route)
class RouteAdmin(TenantGeoAdmin):
    list_display = ["code", "date", "carrier", "driver", "vehicle", "status"]
    list_filter = ["status", "carrier", "hub", "date"]
    search_fields = ["code"]
    list_select_related = ["carrier", "driver", "vehicle"]
    readonly_fields = ["status", "started_at", "completed_at"]
    inlines = [StopInline]
    date_hierarchy = "date"


@admin.register(Stop)
class StopAdmin(TenantGeoAdmin):
    list_display = ["__str__", "status", "address", "planned_arrival", "eta", "actual_arrival"]
    list_filter = ["status", "kind"]
    search_fields = ["address", "route__code"]
    list_select_related = ["route"]
    readonly_fields = [
        "status",
        "eta",
        "eta_earliest",
        "eta_latest",
        "actual_arrival",
        "actual_departure",
        "failure_reason",
    ]
    inlines = [StopShipmentInline]
    raw_id_fields = ["route"]
