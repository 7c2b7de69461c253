"""Admin for tracking links (list, revoke; never a token: only hashes exist), what recipients
did through them and their ratings (read-only evidence)."""

from django.contrib import admin, messages

from control_tower.admin_site import ReadOnlyTenantAdmin
from tracking.models import CustomerAction, DeliveryRating, TrackingLink
from tracking.services.tracking_links import link_revoke


@admin.register(TrackingLink)
class TrackingLinkAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "shipment",
        "source",
        "created_at",
        "created_by",
        "last_opened_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = ["source", "revoked_at"]
    list_select_related = ["shipment"]
    search_fields = ["shipment__reference"]
    # The token hash is not shown either: it identifies the link to nobody but an attacker
    # holding a dump, and support finds links by shipment.
    exclude = ["token_hash"]
    actions = ["revoke"]
    date_hierarchy = "created_at"

    @admin.action(description="Revoke selected links")
    def revoke(self, request, queryset):
        actor = getattr(request, "actor", None)
        label = actor.label if actor is not None else request.user.get_username()
        for link in queryset:
            link_revoke(link, actor=f"admin {label}")
        messages.info(request, "The selected links no longer work.")


@admin.register(CustomerAction)
class CustomerActionAdmin(ReadOnlyTenantAdmin):
    list_display = ["occurred_at", "kind", "shipment", "link"]
    list_filter = ["kind"]
    list_select_related = ["shipment"]
    search_fields = ["shipment__reference"]
    exclude = ["key"]
    date_hierarchy = "occurred_at"


@admin.register(DeliveryRating)
class DeliveryRatingAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "stars", "shipment", "carrier", "driver"]
    list_filter = ["stars", "carrier"]
    list_select_related = ["shipment", "carrier", "driver"]
    search_fields = ["shipment__reference"]
    date_hierarchy = "created_at"
