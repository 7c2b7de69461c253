"""The outbox in the admin, read-only: what is pending, retrying or dead, and why."""

from __future__ import annotations

from django.contrib import admin

from control_tower.admin_site import TenantAdmin
from control_tower.events.models import OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(TenantAdmin):
    list_display = [
        "id",
        "type",
        "aggregate_type",
        "aggregate_id",
        "state",
        "attempts",
        "occurred_at",
        "next_attempt_at",
        "delivered_at",
        "dead_at",
    ]
    list_filter = ["type", ("dead_at", admin.EmptyFieldListFilter), "delivered_at"]
    search_fields = ["event_id", "aggregate_id"]
    ordering = ["-id"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields] + ["state"]

    # Rows are written by services and moved by the relay only.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
