"""Webhooks in the admin: subscriptions (the secret is shown once, in a message, on creation
and rotation), the delivery log (read-only, attempts inline, replay) and the allow list."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from control_tower.admin_site import (
    ReadOnlyInline,
    ReadOnlyTenantAdmin,
    TenantAdmin,
)
from control_tower.errors import DomainError
from control_tower.tenancy.actors import Actor
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSettings


def _actor(request) -> Actor | None:
    return getattr(request, "actor", None)


class WebhookEndpointForm(forms.ModelForm):
    event_types = forms.CharField(
        help_text='Comma-separated: "shipment.status_changed, alert.*" or "*".'
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "event_types", "carrier", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["event_types"] = ", ".join(self.instance.event_types)

    def clean_event_types(self):
        patterns = [p.strip() for p in self.cleaned_data["event_types"].split(",") if p.strip()]
        try:
            return services.check_event_types(patterns)
        except DomainError as error:
            raise forms.ValidationError(error.detail) from error

    def clean_url(self):
        from webhooks.safety import parse_url

        try:
            parse_url(self.cleaned_data["url"])
        except DomainError as error:
            raise forms.ValidationError(error.detail) from error
        return self.cleaned_data["url"].strip()


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TenantAdmin):
    form = WebhookEndpointForm
    list_display = [
        "name",
        "url",
        "carrier",
        "enabled",
        "consecutive_failures",
        "failing_since",
        "disabled_reason",
    ]
    list_filter = ["enabled", "carrier"]
    search_fields = ["name", "url"]
    readonly_fields = [
        "disabled_at",
        "disabled_reason",
        "consecutive_failures",
        "failing_since",
        "last_success_at",
        "previous_secret_until",
        "created_by",
        "created_at",
    ]
    actions = ["enable", "disable", "send_test", "rotate_secret"]

    def save_model(self, request, obj, form, change):
        if change:
            services.endpoint_update(
                actor=_actor(request),
                endpoint=obj,
                **{k: form.cleaned_data[k] for k in ("name", "url", "event_types", "enabled")},
                carrier_id=obj.carrier_id,
            )
            return
        endpoint, secret = services.endpoint_create(
            actor=_actor(request),
            name=obj.name,
            url=obj.url,
            event_types=obj.event_types,
            carrier_id=obj.carrier_id,
            enabled=obj.enabled,
        )
        # The admin goes on with `obj` (its messages and redirect): make it the saved row.
        obj.__dict__.update(endpoint.__dict__)
        messages.warning(
            request, f"The signing secret of {endpoint.name}, shown this once: {secret}"
        )

    @admin.action(description="Enable (resets the failure counters)")
    def enable(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_enable(endpoint=endpoint)
        messages.success(request, f"{queryset.count()} endpoint(s) enabled.")

    @admin.action(description="Disable")
    def disable(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_disable(endpoint=endpoint, reason="Disabled from the admin.")
        messages.success(request, f"{queryset.count()} endpoint(s) disabled.")

    @admin.action(description="Send a test ping")
    def send_test(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_send_test(endpoint=endpoint)
        messages.success(request, f"Test ping queued for {queryset.count()} endpoint(s).")

    @admin.action(description="Rotate the secret (the old one signs for 24 h more)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            endpoint, secret = services.endpoint_rotate_secret(endpoint=endpoint)
            messages.warning(request, f"New secret of {endpoint.name}, shown this once: {secret}")


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = [
        "number",
        "attempted_at",
        "response_status",
        "duration_ms",
        "error",
        "response_body",
        "request_headers",
    ]
    readonly_fields = fields
    ordering = ["number"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "id",
        "endpoint",
        "event_type",
        "ordering_key",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "event_type", "endpoint"]
    search_fields = ["event_id", "message_id", "ordering_key"]
    list_select_related = ["endpoint"]
    ordering = ["-id"]
    inlines = [WebhookAttemptInline]
    actions = ["replay"]

    @admin.action(description="Replay (send the event again)")
    def replay(self, request, queryset):
        for delivery in queryset:
            services.delivery_replay(delivery=delivery)
        messages.success(request, f"{queryset.count()} delivery(ies) queued again.")


@admin.register(WebhookSettings)
class WebhookSettingsAdmin(TenantAdmin):
    list_display = ["__str__", "allowed_private_hosts", "updated_at"]

    def save_model(self, request, obj, form, change):
        obj.allowed_private_hosts = services.check_allow_list(obj.allowed_private_hosts)
        super().save_model(request, obj, form, change)
