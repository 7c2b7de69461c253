"""`GET /api/v1/reports/eta-accuracy/`: how accurate the ETAs shown were (docs/ETA.md
"Accuracy", docs/REPORTS_API.md). The same parameters as every report (`report_query`), grouped
by hour, hub, carrier, driver or day; JSON, or CSV/XLSX with `?format=`. The figures come from
`carriers.sla.eta_accuracy.eta_accuracy`, which narrows to what the actor may see."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from carriers.sla import exports
from carriers.sla.api import answers
from carriers.sla.api.serializers import ExportLinksSerializer, PeriodSerializer
from carriers.sla.api.views import FILTER_PARAMETERS, ReportView, _answers, _param
from carriers.sla.eta_accuracy import (
    ACCURACY_GROUPS,
    TARGET_COVERAGE,
    Accuracy,
    AccuracyReport,
    accuracy_query,
    eta_accuracy,
)

FIGURES = (
    ("n", "Samples", "int"),
    ("mae_min", "MAE (min)", "float"),
    ("p90_abs_min", "P90 abs. error (min)", "float"),
    ("bias_min", "Bias, actual − ETA (min)", "float"),
    ("coverage", "Window coverage", "float"),
    ("early_share", "Before the window", "float"),
    ("late_share", "After the window", "float"),
    ("median_width_min", "Median window width (min)", "float"),
)


def accuracy_answer(accuracy: Accuracy) -> dict:
    return {key: getattr(accuracy, key) for key, _label, _unit in FIGURES}


def report_answer(report: AccuracyReport) -> dict:
    """The report as JSON-ready data (the API's body; the page reads the dataclasses)."""
    return {
        "period": answers.period(report.filters),
        "group": report.group,
        "target_coverage": list(TARGET_COVERAGE),
        "checkpoints": [
            {"horizon": bucket, "minutes_before_arrival": minutes}
            for bucket, minutes in report.checkpoints
        ],
        "overall": accuracy_answer(report.overall),
        "horizons": [
            {"horizon": bucket, **accuracy_answer(accuracy)}
            for bucket, accuracy in report.horizons.items()
        ],
        "rows": [
            {
                "key": row.key,
                "label": row.label,
                "overall": accuracy_answer(row.overall),
                "horizons": [
                    {"horizon": bucket, **accuracy_answer(accuracy)}
                    for bucket, accuracy in row.by_horizon.items()
                ],
            }
            for row in report.rows
        ],
        "coverage_by_day": [
            {
                "day": day.isoformat(),
                "samples": report.samples_by_day.get(day, 0),
                "coverage": coverage,
            }
            for day, coverage in report.coverage_by_day.items()
        ],
    }


def accuracy_table(report: AccuracyReport) -> exports.Table:
    """One row per group value and horizon (and "all"), the figures as columns."""
    columns = [
        exports.Column("group", report.group.capitalize()),
        exports.Column("horizon", "Horizon (min before arrival)"),
        *[exports.Column(key, label, unit) for key, label, unit in FIGURES],
    ]
    rows = [{"group": "All", "horizon": "all", **accuracy_answer(report.overall)}]
    rows += [
        {"group": "All", "horizon": bucket, **accuracy_answer(accuracy)}
        for bucket, accuracy in report.horizons.items()
    ]
    for row in report.rows:
        rows.append({"group": row.label, "horizon": "all", **accuracy_answer(row.overall)})
        rows += [
            {"group": row.label, "horizon": bucket, **accuracy_answer(accuracy)}
            for bucket, accuracy in row.by_horizon.items()
        ]
    return exports.Table(
        name=f"eta_accuracy_by_{report.group}",
        title=f"ETA accuracy by {report.group}",
        columns=columns,
        rows=rows,
        filters=exports.filter_lines(report.filters, group=report.group),
    )


class AccuracySerializer(serializers.Serializer):
    n = serializers.IntegerField()
    mae_min = serializers.FloatField(allow_null=True)
    p90_abs_min = serializers.FloatField(allow_null=True)
    bias_min = serializers.FloatField(allow_null=True, help_text="Mean of actual − ETA.")
    coverage = serializers.FloatField(allow_null=True, help_text="Share inside the window.")
    early_share = serializers.FloatField(allow_null=True)
    late_share = serializers.FloatField(allow_null=True)
    median_width_min = serializers.FloatField(allow_null=True)


class HorizonAccuracySerializer(AccuracySerializer):
    horizon = serializers.CharField()


class CheckpointSerializer(serializers.Serializer):
    horizon = serializers.CharField()
    minutes_before_arrival = serializers.FloatField()


class AccuracyRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    overall = AccuracySerializer()
    horizons = HorizonAccuracySerializer(many=True)


class CoverageDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    samples = serializers.IntegerField()
    coverage = serializers.DictField(
        child=serializers.FloatField(allow_null=True), help_text="Coverage by horizon bucket."
    )


class AccuracyAnswerSerializer(serializers.Serializer):
    period = PeriodSerializer()
    group = serializers.ChoiceField(choices=ACCURACY_GROUPS)
    target_coverage = serializers.ListField(child=serializers.FloatField())
    checkpoints = CheckpointSerializer(many=True)
    overall = AccuracySerializer()
    horizons = HorizonAccuracySerializer(many=True)
    rows = AccuracyRowSerializer(many=True)
    coverage_by_day = CoverageDaySerializer(many=True)
    exports = ExportLinksSerializer()


class EtaAccuracyView(ReportView):
    @extend_schema(
        summary="How accurate the ETAs shown were: MAE, P90 error, bias and window coverage "
        "by horizon, per hour, hub, carrier, driver or day",
        parameters=[
            *[parameter for parameter in FILTER_PARAMETERS if parameter.name != "group"],
            _param(
                "group",
                "Rows by: " + ", ".join(ACCURACY_GROUPS) + " (default hour).",
                enum=list(ACCURACY_GROUPS),
            ),
        ],
        responses=_answers(AccuracyAnswerSerializer),
    )
    def get(self, request):
        query = accuracy_query(actor=self.actor, params=request.query_params)
        report = eta_accuracy(actor=self.actor, filters=query.filters, group=query.group)
        if self.export_format:
            return self.download(accuracy_table(report), query)
        return Response({**report_answer(report), "exports": self.export_links(query)})
