"""Bodies of the webhook API. Parsing only: the rules are in webhooks/services.py."""

from __future__ import annotations

from rest_framework import serializers

from control_tower.api.fields import SaneDateTimeField
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookSettings


class WebhookEndpointSerializer(serializers.ModelSerializer):
    secret_rotating_until = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "name",
            "url",
            "event_types",
            "carrier",
            "enabled",
            "disabled_at",
            "disabled_reason",
            "created_by",
            "created_at",
            "updated_at",
            "consecutive_failures",
            "failing_since",
            "last_success_at",
            "secret_rotating_until",
        ]
        read_only_fields = fields

    def get_secret_rotating_until(self, obj) -> str | None:
        """Until when the previous secret still signs next to the current one (rotation)."""
        until = obj.previous_secret_until
        return until.isoformat() if until and obj.previous_secret_encrypted else None


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """The answer of create and rotate-secret: the only time the secret is shown."""

    secret = serializers.CharField(read_only=True, help_text="whsec_…; shown once, keep it.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=2000)
    event_types = serializers.ListField(
        child=serializers.CharField(max_length=100), allow_empty=False
    )
    carrier = serializers.IntegerField(
        required=False, allow_null=True, help_text="Carrier id; forced for carrier users."
    )
    enabled = serializers.BooleanField(required=False, default=True)


class WebhookEndpointPatchSerializer(WebhookEndpointWriteSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False
        self.fields["enabled"].default = serializers.empty


class RotateSecretSerializer(serializers.Serializer):
    overlap_hours = serializers.FloatField(
        required=False, min_value=0, max_value=720, help_text="Default 24."
    )


class ReplaySinceSerializer(serializers.Serializer):
    since = SaneDateTimeField()


class ReplayCountSerializer(serializers.Serializer):
    replayed = serializers.IntegerField()


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "attempted_at",
            "request_url",
            "request_headers",
            "response_status",
            "response_headers",
            "response_body",
            "duration_ms",
            "error",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    # Plain text in the schema: a second enum named "status" would collide with the shipments'.
    status = serializers.CharField(
        read_only=True, help_text="pending, retrying (failed, will retry), succeeded or dead."
    )

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_id",
            "event_type",
            "ordering_key",
            "message_id",
            "seq",
            "replay_of",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    payload = serializers.JSONField(read_only=True)
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "payload", "attempt_log"]
        read_only_fields = fields


class WebhookSettingsSerializer(serializers.ModelSerializer):
    allowed_private_hosts = serializers.ListField(child=serializers.CharField(max_length=255))

    class Meta:
        model = WebhookSettings
        fields = ["allowed_private_hosts", "updated_at"]
        read_only_fields = ["updated_at"]
