"""Bodies of the notification endpoints (parse only; rules are in notifications/services)."""

from __future__ import annotations

from django.template import Engine, TemplateSyntaxError
from rest_framework import serializers

from control_tower.models import Language
from notifications.addresses import InvalidAddress
from notifications.models import (
    Channel,
    ContactPreference,
    Notification,
    NotificationLog,
    NotificationSettings,
    NotificationTemplate,
    PreferenceState,
    Trigger,
)
from notifications.policy import TRIGGER_PARAMETERS
from notifications.services.preferences import normalize_address


class NotificationLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationLog
        fields = ["at", "status", "detail", "provider_code"]


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "shipment",
            "alert_id",
            "carrier",
            "trigger",
            "channel",
            "audience",
            "address",
            "language",
            "status",
            "reason",
            "send_after",
            "expires_at",
            "attempts",
            "next_attempt_at",
            "provider",
            "provider_message_id",
            "idempotency_key",
            "subject_preview",
            "body_preview",
            "created_at",
            "sent_at",
        ]
        read_only_fields = fields


class NotificationDetailSerializer(NotificationSerializer):
    logs = NotificationLogSerializer(many=True, read_only=True)

    class Meta(NotificationSerializer.Meta):
        fields = [*NotificationSerializer.Meta.fields, "logs"]
        read_only_fields = fields


class NotificationSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationSettings
        exclude = ["id", "organization"]
        read_only_fields = ["updated_at"]

    def validate(self, attrs):
        for name in ("rate_limit_per_hour", "rate_limit_per_day"):
            if name in attrs and attrs[name] < 1:
                raise serializers.ValidationError({name: "At least 1."})
        return attrs


class TriggerSettingSerializer(serializers.Serializer):
    trigger = serializers.ChoiceField(choices=Trigger.choices, read_only=True)
    enabled = serializers.BooleanField(required=False)
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices), required=False
    )
    parameters = serializers.DictField(child=serializers.IntegerField(min_value=0), required=False)

    def validate_parameters(self, value):
        allowed = TRIGGER_PARAMETERS[self.context["trigger"]]
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise serializers.ValidationError(
                f"Unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}."
            )
        return value

    def validate_channels(self, value):
        return sorted(set(value))


class NotificationTemplateSerializer(serializers.ModelSerializer):
    language = serializers.ChoiceField(choices=Language.choices)

    class Meta:
        model = NotificationTemplate
        fields = ["id", "trigger", "channel", "language", "subject", "text", "html", "updated_at"]
        read_only_fields = ["id", "updated_at"]

    def validate(self, attrs):
        for name in ("subject", "text", "html"):
            try:
                Engine().from_string(attrs.get(name, "") or "")
            except TemplateSyntaxError as exc:
                raise serializers.ValidationError({name: f"Template error: {exc}"}) from exc
        return attrs


class TemplatePreviewSerializer(serializers.Serializer):
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    channel = serializers.ChoiceField(choices=Channel.choices)
    language = serializers.ChoiceField(choices=Language.choices, default="es")
    subject = serializers.CharField(required=False, allow_blank=True)
    text = serializers.CharField(required=False, allow_blank=True)
    html = serializers.CharField(required=False, allow_blank=True)
    variables = serializers.DictField(required=False, default=dict)


class ContactPreferenceSerializer(serializers.ModelSerializer):
    class Meta:
        model = ContactPreference
        fields = ["id", "channel", "address", "state", "source", "at"]
        read_only_fields = fields


class ContactPreferenceInputSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    address = serializers.CharField(max_length=254)
    state = serializers.ChoiceField(choices=PreferenceState.choices)
    region = serializers.CharField(max_length=2, required=False, default="")

    def validate(self, attrs):
        try:
            attrs["address"] = normalize_address(
                attrs["channel"], attrs["address"], region=attrs["region"]
            )
        except InvalidAddress as exc:
            raise serializers.ValidationError({"address": str(exc)}) from exc
        return attrs
