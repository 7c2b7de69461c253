"""Serializers of the reports API. The report answers are built from the selectors' dataclasses
by `carriers/sla/api/answers.py`; the output serializers here describe those shapes for the
OpenAPI schema (drf-spectacular). The scorecard e-mail serializer is a real model serializer:
recipients and carriers are narrowed to the caller's organization by TenantModelSerializer."""

from __future__ import annotations

from rest_framework import serializers

from carriers.sla.models import ScorecardEmail
from carriers.sla.query import MAX_REPORT_DAYS
from control_tower.api.serializers import TenantModelSerializer
from control_tower.tenancy.roles import READ, Resource, role_allows

# --- report answers (schema only) -----------------------------------------------------------


class PeriodSerializer(serializers.Serializer):
    date_from = serializers.DateField(help_text="First service day (inclusive).")
    date_to = serializers.DateField(help_text="Last service day (inclusive).")
    days = serializers.IntegerField()


class MetricDefinitionSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    unit = serializers.CharField(help_text="pct, min, count, per_100, stars, per_hour or km.")
    higher_is_better = serializers.BooleanField(allow_null=True)
    has_target = serializers.BooleanField()
    description = serializers.CharField()


class MetricValueSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="null: no data in the period.")
    target = serializers.FloatField(allow_null=True)
    status = serializers.ChoiceField(choices=["pass", "breach"], allow_null=True)
    previous = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True)
    numerator = serializers.IntegerField(allow_null=True)
    denominator = serializers.IntegerField(allow_null=True)


class ScorecardRowSerializer(serializers.Serializer):
    group = serializers.CharField()
    key = serializers.CharField()
    label = serializers.CharField()
    carrier_id = serializers.IntegerField(allow_null=True)
    breaches = serializers.IntegerField(help_text="How many metrics of the row breach target.")
    metrics = serializers.DictField(child=MetricValueSerializer(), help_text="By metric key.")


class ExportLinksSerializer(serializers.Serializer):
    csv = serializers.CharField()
    xlsx = serializers.CharField()


class ScorecardAnswerSerializer(serializers.Serializer):
    period = PeriodSerializer()
    previous_period = PeriodSerializer(allow_null=True)
    group = serializers.CharField()
    metrics = MetricDefinitionSerializer(many=True)
    rows = ScorecardRowSerializer(many=True)
    total = ScorecardRowSerializer()
    exports = ExportLinksSerializer()


class PointSerializer(serializers.Serializer):
    date = serializers.DateField()
    value = serializers.FloatField(allow_null=True)


class SeriesSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    points = PointSerializer(many=True)


class TrendAnswerSerializer(serializers.Serializer):
    period = PeriodSerializer()
    group = serializers.CharField()
    metric = MetricDefinitionSerializer()
    series = SeriesSerializer(many=True)
    exports = ExportLinksSerializer()


class CategorySerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()


class BreakdownRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="By category.")
    total = serializers.IntegerField()


class BreakdownAnswerSerializer(serializers.Serializer):
    period = PeriodSerializer()
    group = serializers.CharField()
    categories = CategorySerializer(many=True)
    rows = BreakdownRowSerializer(many=True)
    exports = ExportLinksSerializer()


class ColumnSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()


class DrilldownAnswerSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    metric = serializers.CharField()
    outcome = serializers.CharField(allow_null=True)
    columns = ColumnSerializer(many=True)
    results = serializers.ListField(
        child=serializers.DictField(),
        help_text='Rows with the column keys and "links": {"console": url, "custody": url}.',
    )
    exports = ExportLinksSerializer()


class PlanningRowSerializer(serializers.Serializer):
    area = serializers.CharField(required=False, help_text="With by=area: the grid cell.")
    address = serializers.CharField(required=False, help_text="With by=address.")
    hour = serializers.IntegerField(required=False, help_text="With by=hour: local hour 0-23.")
    count = serializers.IntegerField()
    dwell_mean_s = serializers.FloatField(allow_null=True)
    dwell_p50_s = serializers.FloatField(allow_null=True)
    dwell_p90_s = serializers.FloatField(allow_null=True)
    transit_mean_s = serializers.FloatField(allow_null=True)
    transit_p50_s = serializers.FloatField(allow_null=True)
    transit_p90_s = serializers.FloatField(allow_null=True)


class PlanningHistoryAnswerSerializer(serializers.Serializer):
    period = PeriodSerializer()
    by = serializers.ChoiceField(choices=["area", "address", "hour"])
    count = serializers.IntegerField()
    results = PlanningRowSerializer(many=True)
    exports = ExportLinksSerializer()


# --- recompute ------------------------------------------------------------------------------


class RecomputeSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()

    def validate(self, attrs):
        if attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_from": ["Must be on or before date_to."]})
        if (attrs["date_to"] - attrs["date_from"]).days + 1 > MAX_REPORT_DAYS:
            raise serializers.ValidationError(
                {"date_to": [f"Recompute at most {MAX_REPORT_DAYS} days at a time."]}
            )
        return attrs


class RecomputeAnswerSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    days = serializers.IntegerField()
    status = serializers.CharField()


# --- scheduled e-mails ----------------------------------------------------------------------


class ScorecardEmailSerializer(TenantModelSerializer):
    """A weekly scorecard e-mail. Recipients are memberships of the organization whose role may
    read reports; carriers (optional) are the organization's."""

    class Meta:
        model = ScorecardEmail
        fields = [
            "id",
            "name",
            "recipients",
            "carriers",
            "weekday",
            "hour",
            "period_days",
            "is_active",
            "last_sent_at",
            "created_at",
        ]
        read_only_fields = ["last_sent_at", "created_at"]

    def validate_recipients(self, memberships):
        if not memberships:
            raise serializers.ValidationError("Choose at least one member.")
        blind = [m for m in memberships if not role_allows(m.role, Resource.REPORTS, READ)]
        if blind:
            names = ", ".join(str(m.pk) for m in blind)
            raise serializers.ValidationError(
                f"These members' role cannot read reports (membership ids: {names})."
            )
        return memberships


class SendNowAnswerSerializer(serializers.Serializer):
    sent = serializers.IntegerField(help_text="Messages accepted by the mail server.")
    skipped = serializers.IntegerField(help_text="Recipients with nothing they may see.")
    failed = serializers.IntegerField()
