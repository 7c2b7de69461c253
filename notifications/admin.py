"""Notifications in the admin: the policy (settings, triggers, template overrides with a
preview), recipients' consent, and the message log (read-only, its delivery log inline, a
"retry now" action for failed messages)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template import TemplateSyntaxError
from django.utils.html import format_html

from control_tower.admin_site import (
    ReadOnlyInline,
    ReadOnlyTenantAdmin,
    TenantAdmin,
)
from notifications.models import (
    Channel,
    ContactPreference,
    Notification,
    NotificationLog,
    NotificationSettings,
    NotificationTemplate,
    Status,
    TriggerSetting,
)
from notifications.policy import TRIGGER_PARAMETERS
from notifications.rendering import SAMPLE_CONTEXT, render_sources
from notifications.segments import sms_length
from notifications.services.dispatch import notification_retry_now


@admin.register(NotificationSettings)
class NotificationSettingsAdmin(TenantAdmin):
    list_display = ["__str__", "sender_name", "from_email", "quiet_hours_start", "quiet_hours_end"]


class TriggerSettingForm(forms.ModelForm):
    """Channels and parameters are JSON: checked against what the trigger knows."""

    class Meta:
        model = TriggerSetting
        fields = ["trigger", "enabled", "channels", "parameters"]

    def clean(self):
        data = super().clean()
        channels, parameters = data.get("channels"), data.get("parameters") or {}
        if not isinstance(channels, list) or set(channels) - set(Channel.values):
            self.add_error("channels", f"A list of {', '.join(Channel.values)}.")
        allowed = TRIGGER_PARAMETERS.get(data.get("trigger"), frozenset())
        if not isinstance(parameters, dict) or set(parameters) - allowed:
            self.add_error("parameters", f"Known parameters: {', '.join(sorted(allowed))}.")
        return data


@admin.register(TriggerSetting)
class TriggerSettingAdmin(TenantAdmin):
    form = TriggerSettingForm
    list_display = ["trigger", "enabled", "channels", "parameters", "updated_at"]
    list_filter = ["enabled", "trigger"]


@admin.register(NotificationTemplate)
class NotificationTemplateAdmin(TenantAdmin):
    list_display = ["trigger", "channel", "language", "updated_at"]
    list_filter = ["trigger", "channel", "language"]
    readonly_fields = ["preview"]
    fields = ["trigger", "channel", "language", "subject", "text", "html", "preview"]

    @admin.display(description="Preview (sample variables)")
    def preview(self, obj):
        if obj is None or not obj.pk:
            return "Save to see a preview."
        sources = {"subject": obj.subject, "text": obj.text, "html": obj.html}
        context = {
            **SAMPLE_CONTEXT,
            "organization_name": obj.organization.name,
            "primary_color": obj.organization.primary_color,
            "language": obj.language,
        }
        try:
            rendered = render_sources(sources, channel=obj.channel, context=context)
        except TemplateSyntaxError as exc:
            return f"Template error: {exc}"
        if obj.channel == Channel.SMS:
            length = sms_length(rendered.text)
            return format_html(
                "<pre class='notification-preview'>{}</pre>"
                "<p>{} · {} characters · {} segment(s)</p>",
                rendered.text,
                length.encoding,
                length.units,
                length.segments,
            )
        return format_html(
            "<p><strong>{}</strong></p><pre class='notification-preview'>{}</pre>"
            "<iframe sandbox srcdoc='{}' style='width:100%;height:420px;border:1px solid #ccc'>"
            "</iframe>",
            rendered.subject,
            rendered.text,
            rendered.html,
        )


@admin.register(ContactPreference)
class ContactPreferenceAdmin(TenantAdmin):
    list_display = ["address", "channel", "state", "source", "at"]
    list_filter = ["channel", "state", "source"]
    search_fields = ["address"]


class NotificationLogInline(ReadOnlyInline):
    model = NotificationLog
    fields = ["at", "status", "detail", "provider_code"]
    readonly_fields = fields
    ordering = ["at", "id"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyTenantAdmin):
    list_display = [
        "created_at",
        "trigger",
        "channel",
        "audience",
        "address",
        "status",
        "reason",
        "attempts",
        "shipment",
    ]
    list_filter = ["status", "channel", "trigger", "audience", "reason"]
    search_fields = ["address", "provider_message_id", "dedup_key"]
    list_select_related = ["shipment"]
    date_hierarchy = "created_at"
    exclude = ["context"]
    inlines = [NotificationLogInline]
    actions = ["retry_now"]

    @admin.action(description="Retry the selected failed messages now")
    def retry_now(self, request, queryset):
        done = sum(
            notification_retry_now(message=message)
            for message in queryset.filter(status=Status.FAILED)
        )
        messages.success(request, f"{done} message(s) queued again.")
