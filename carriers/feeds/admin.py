"""Carrier feeds in the admin: feeds (config validated like the API), the inbound event log
(read-only, with "reprocess flagged events") and the file imports (read-only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from carriers.feeds import services
from carriers.feeds.adapters import config_problems
from carriers.feeds.models import CarrierFeed, FeedImport, InboundCarrierEvent
from control_tower.admin_site import ReadOnlyTenantAdmin, TenantAdmin
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.roles import Role


class CarrierFeedForm(forms.ModelForm):
    class Meta:
        model = CarrierFeed
        fields = ["carrier", "name", "adapter", "config", "is_active"]

    def clean(self):
        cleaned = super().clean()
        problems = config_problems(cleaned.get("adapter", ""), cleaned.get("config") or {})
        if problems:
            raise forms.ValidationError(
                [f"{path}: {'; '.join(messages_)}" for path, messages_ in problems.items()]
            )
        return cleaned


@admin.register(CarrierFeed)
class CarrierFeedAdmin(TenantAdmin):
    form = CarrierFeedForm
    list_display = ["name", "carrier", "adapter", "is_active", "created_at"]
    list_filter = ["adapter", "is_active", "carrier"]
    search_fields = ["name"]


def _actor_for(request, event: InboundCarrierEvent) -> Actor:
    # A superuser browsing every organization has no actor: act as the event's organization.
    actor = getattr(request, "actor", None)
    return actor or Actor(organization=event.organization, user=request.user, role=Role.OWNER)


@admin.register(InboundCarrierEvent)
class InboundCarrierEventAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "received_at",
        "carrier",
        "feed",
        "source",
        "barcode",
        "carrier_status_code",
        "carrier_reason_code",
        "scan_type",
        "reason_code",
        "flagged",
        "result",
    ]
    list_filter = ["flagged", "result", "source", "carrier", "feed"]
    search_fields = ["barcode", "reference", "carrier_status_code", "carrier_reason_code"]
    actions = ["reprocess_flagged"]

    @admin.action(description="Reprocess flagged events (after fixing the feed's mapping)")
    def reprocess_flagged(self, request, queryset):
        flagged = list(queryset.filter(flagged=True).select_related("organization"))
        done = 0
        for event in flagged:
            done += len(services.events_reprocess(actor=_actor_for(request, event), events=[event]))
        still = len(flagged) - done
        messages.success(request, f"{done} event(s) now mapped and applied; {still} still unknown.")


@admin.register(FeedImport)
class FeedImportAdmin(ReadOnlyTenantAdmin):
    list_display = ["created_at", "carrier", "feed", "kind", "file_name", "row_count", "state"]
    list_filter = ["kind", "state", "dry_run", "carrier"]
    search_fields = ["file_name", "sha256"]
