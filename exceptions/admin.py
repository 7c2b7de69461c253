"""Alerts in the admin: read-only evidence (the services write them; the API works them), with
their transitions inline. Thresholds are the organization's policy and edited here."""

from __future__ import annotations

from django.contrib import admin, messages

from control_tower.admin_site import (
    ReadOnlyInline,
    ReadOnlyTenantAdmin,
    TenantAdmin,
)
from control_tower.errors import DomainError
from exceptions import services
from exceptions.models import THRESHOLD_FIELDS, Alert, AlertThresholds, AlertTransition
from exceptions.thresholds import forget_thresholds


class AlertTransitionInline(ReadOnlyInline):
    model = AlertTransition
    fields = ["at", "from_state", "to_state", "actor", "details"]
    readonly_fields = fields
    ordering = ["at", "id"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "raised_at",
        "kind",
        "severity",
        "state",
        "subject_type",
        "subject_id",
        "carrier",
        "title",
        "escalation_level",
    ]
    list_filter = ["state", "kind", "severity", "carrier"]
    search_fields = ["title", "subject_id"]
    list_select_related = ["carrier"]
    date_hierarchy = "raised_at"
    inlines = [AlertTransitionInline]
    actions = ["resolve_no_action"]

    @admin.action(description="Resolve the selected alerts (no action needed)")
    def resolve_no_action(self, request, queryset):
        actor = getattr(request, "actor", None)
        if actor is None:
            messages.error(request, "Pick an organization first.")
            return
        done = 0
        for alert_id in queryset.exclude(state="resolved").values_list("pk", flat=True):
            try:
                services.alert_resolve(
                    actor=actor,
                    alert_id=alert_id,
                    resolution_code="no_action_needed",
                    note="Resolved from the admin.",
                )
                done += 1
            except DomainError as error:  # resolved meanwhile: say so, go on
                messages.warning(request, f"Alert {alert_id}: {error.detail}")
        messages.success(request, f"{done} alert(s) resolved.")


@admin.register(AlertThresholds)
class AlertThresholdsAdmin(TenantAdmin):
    list_display = ["__str__", "carrier", "updated_at"]
    list_select_related = ["carrier"]
    fieldsets = [
        (None, {"fields": ["carrier"]}),
        (
            "Thresholds (empty: the organization's value, else the default)",
            {"fields": THRESHOLD_FIELDS},
        ),
    ]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # This process sees the change at once; others within the thresholds cache time.
        forget_thresholds(obj.organization_id)
