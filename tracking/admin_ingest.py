"""Admin for what devices send: read-only evidence (last positions, scans, custody log), and
the road networks.

Pings themselves are browsed through the API (`/api/v1/pings/?device=`): a partitioned table with
a composite key is not something to page through in the admin.
"""

from django.contrib import admin

from control_tower.admin_site import ReadOnlyTenantAdmin, TenantGeoAdmin
from tracking.models import (
    CustodyEntry,
    DevicePosition,
    PodFile,
    ProofOfDelivery,
    RoadNetwork,
    Scan,
)


@admin.register(DevicePosition)
class DevicePositionAdmin(ReadOnlyTenantAdmin, TenantGeoAdmin):
    list_display = ["device", "fix_time", "received_at", "accuracy_m", "speed_mps", "source"]
    list_filter = ["source"]
    list_select_related = ["device"]
    search_fields = ["device__name", "device__external_id"]


@admin.register(Scan)
class ScanAdmin(ReadOnlyTenantAdmin):
    list_display = ["occurred_at", "barcode", "scan_type", "result", "shipment", "device"]
    list_filter = ["scan_type", "result"]
    list_select_related = ["shipment", "device"]
    search_fields = ["barcode", "event_id", "idempotency_key"]
    date_hierarchy = "occurred_at"


@admin.register(CustodyEntry)
class CustodyEntryAdmin(ReadOnlyTenantAdmin):
    list_display = ["shipment", "sequence", "kind", "actor", "custodian", "occurred_at", "hash"]
    list_filter = ["kind"]
    list_select_related = ["shipment"]
    search_fields = ["shipment__reference", "hash"]
    ordering = ["shipment", "sequence"]


class PodFileInline(admin.TabularInline):
    model = PodFile
    extra = 0
    can_delete = False
    fields = ["kind", "content_type", "width", "height", "size_bytes", "sha256"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ProofOfDelivery)
class ProofOfDeliveryAdmin(ReadOnlyTenantAdmin, TenantGeoAdmin):
    list_display = [
        "shipment",
        "captured_at",
        "recipient_name",
        "pin_verified",
        "distance_m",
        "outside_geofence",
    ]
    list_filter = ["outside_geofence", "pin_verified"]
    list_select_related = ["shipment"]
    search_fields = ["shipment__reference", "recipient_name", "idempotency_key"]
    inlines = [PodFileInline]
    date_hierarchy = "captured_at"


@admin.register(RoadNetwork)
class RoadNetworkAdmin(admin.ModelAdmin):
    """Public map data shared by all organizations: platform operators (superusers) only;
    loaded with `manage.py load_road_network`, never edited here."""

    list_display = ["slug", "name", "node_count", "edge_count", "loaded_at", "attribution"]
    readonly_fields = [f.name for f in RoadNetwork._meta.fields if f.name != "bbox"]
    exclude = ["bbox"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
