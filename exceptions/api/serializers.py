"""Alert bodies. The representation is `exceptions.representation.alert_data` (the same dict the
events and the live socket carry); the fields below describe it for the schema. Action bodies
only parse: the rules of each transition are in exceptions/services.py."""

from __future__ import annotations

from rest_framework import serializers

from control_tower.api.fields import SaneDateTimeField
from exceptions.models import Alert
from exceptions.representation import alert_data
from exceptions.services import PERSON_RESOLUTION_CODES


class AlertPersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.CharField()


class AlertSerializer(serializers.ModelSerializer):
    acknowledged_by = AlertPersonSerializer(read_only=True, allow_null=True)
    assigned_to = AlertPersonSerializer(read_only=True, allow_null=True)
    resolved_by = AlertPersonSerializer(read_only=True, allow_null=True)
    detail = serializers.JSONField(read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "severity",
            "state",
            "subject_type",
            "subject_id",
            "route",
            "stop",
            "vehicle",
            "shipment",
            "carrier",
            "title",
            "detail",
            "started_at",
            "raised_at",
            "last_seen_at",
            "acknowledged_by",
            "acknowledged_at",
            "assigned_to",
            "assigned_at",
            "snoozed_until",
            "escalated_at",
            "escalation_level",
            "resolved_at",
            "resolved_by",
            "resolution_code",
            "resolution_note",
            "auto_resolved",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        return alert_data(instance)


class AlertNoteSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class AlertAssignSerializer(AlertNoteSerializer):
    assignee = serializers.IntegerField(min_value=1, help_text="The user id of a member.")


class AlertSnoozeSerializer(AlertNoteSerializer):
    until = SaneDateTimeField(help_text="When the alert wakes (at most 7 days ahead).")


class AlertResolveSerializer(AlertNoteSerializer):
    resolution_code = serializers.ChoiceField(choices=PERSON_RESOLUTION_CODES)


class AlertSuggestionSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["reassign_stop", "call_driver", "notify_customer"])
    enabled = serializers.BooleanField()
    label = serializers.CharField()


class AlertSuggestionsSerializer(serializers.Serializer):
    """Suggested actions, best first; each kind adds its own fields (docs/CONSOLE.md)."""

    alert = serializers.IntegerField()
    stop = serializers.IntegerField(allow_null=True)
    route = serializers.IntegerField(allow_null=True)
    actions = AlertSuggestionSerializer(many=True)
