"""`/api/v1/reports/…` and `/api/v1/scorecard-emails/` (docs/REPORTS_API.md). Thin: parameters
through the one parser (`carriers.sla.query.report_query`), rows through the selectors (which
narrow to what the actor may see), tables through `carriers.sla.exports`.

Every GET report answers JSON, or a download with `?format=csv` / `?format=xlsx` (DRF's own
format parameter: the CSV and XLSX renderers below make those values legal, and an unknown
one is a 400 naming `format` instead of DRF's bare 404)."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from carriers.sla import digest, exports, selectors
from carriers.sla.api import answers
from carriers.sla.api.serializers import (
    BreakdownAnswerSerializer,
    DrilldownAnswerSerializer,
    PlanningHistoryAnswerSerializer,
    RecomputeAnswerSerializer,
    RecomputeSerializer,
    ScorecardAnswerSerializer,
    ScorecardEmailSerializer,
    SendNowAnswerSerializer,
    TrendAnswerSerializer,
)
from carriers.sla.metrics import METRICS
from carriers.sla.models import ScorecardEmail
from carriers.sla.query import ReportQuery, query_string, report_query
from carriers.sla.rollup.dirty import mark_dirty
from carriers.sla.tasks import SLA_ROLLUP_DIRTY
from carriers.sla.types import GROUPS
from control_tower.api.base import TenantAPIView, TenantModelViewSet
from control_tower.tenancy.enqueue import enqueue_on_commit
from control_tower.tenancy.roles import Resource
from tracking.errors import InvalidInput

DRILLDOWN_MAX_PAGE_SIZE = 500
# A download of a drill-down holds at most this many rows (the JSON pages go further).
EXPORT_MAX_ROWS = 50_000
PLANNING_BY = ("area", "address", "hour")


class CsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data  # the view hands over finished bytes (exports.to_csv)


class XlsxRenderer(BaseRenderer):
    media_type = exports.XLSX_CONTENT_TYPE
    format = "xlsx"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


def _param(name, description, **kwargs):
    return OpenApiParameter(
        name, OpenApiTypes.STR, OpenApiParameter.QUERY, description=description, **kwargs
    )


FILTER_PARAMETERS = [
    OpenApiParameter(
        "from", OpenApiTypes.DATE, description="First service day (default: 7 days ago)."
    ),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last service day (default: yesterday)."),
    _param("carrier", "Carrier id(s), repeatable or comma-separated."),
    _param("hub", "Hub id(s)."),
    _param("driver", "Driver id(s)."),
    _param("region", "Hub region(s)."),
    _param("service_type", "same_day, next_day, standard, scheduled (repeatable)."),
    _param("group", "Rows by: " + ", ".join(GROUPS) + " (default carrier).", enum=list(GROUPS)),
    _param("format", "json (default), csv or xlsx: a download.", enum=["json", "csv", "xlsx"]),
]
DOWNLOADS = {
    (200, "text/csv"): OpenApiTypes.BINARY,
    (200, exports.XLSX_CONTENT_TYPE): OpenApiTypes.BINARY,
}


def _answers(serializer):
    return {(200, "application/json"): serializer, **DOWNLOADS}


class ReportView(TenantAPIView):
    """A GET report: JSON by default, a CSV or XLSX download with `?format=`."""

    resource = Resource.REPORTS
    renderer_classes = [JSONRenderer, CsvRenderer, XlsxRenderer]

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            raise InvalidInput.on("format", "Choose json, csv or xlsx.") from None

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        # Errors are JSON, whatever download was asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    @property
    def export_format(self) -> str | None:
        chosen = getattr(self.request, "accepted_renderer", None)
        return chosen.format if chosen is not None and chosen.format in exports.FORMATS else None

    def query(self) -> ReportQuery:
        return report_query(actor=self.actor, params=self.request.query_params)

    def export_links(self, query: ReportQuery, **extra) -> dict:
        return {
            fmt: f"{self.request.path}?{query_string(query, format=fmt, **extra)}"
            for fmt in exports.FORMATS
        }

    def download(self, table: exports.Table, query: ReportQuery) -> HttpResponse:
        content, content_type = exports.render(table, self.export_format)
        response = HttpResponse(content, content_type=content_type)
        filename = table.filename(self.export_format, query.filters)
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ScorecardView(ReportView):
    @extend_schema(
        summary="Scorecard: rows (carriers, hubs…) × metrics, judged against SLA targets",
        parameters=[
            *FILTER_PARAMETERS,
            _param("compare", "true (default): with the previous period of the same length."),
        ],
        responses=_answers(ScorecardAnswerSerializer),
    )
    def get(self, request):
        query = self.query()
        card = selectors.scorecard(
            actor=self.actor, filters=query.filters, group=query.group, compare=query.compare
        )
        if self.export_format:
            return self.download(exports.scorecard_table(card), query)
        return Response({**answers.scorecard(card), "exports": self.export_links(query)})


class TrendView(ReportView):
    @extend_schema(
        summary="A metric per day, one series per group value (the on-time trend per carrier)",
        parameters=[
            *FILTER_PARAMETERS,
            _param("metric", "A metric key (default on_time_pct).", enum=list(METRICS)),
        ],
        responses=_answers(TrendAnswerSerializer),
    )
    def get(self, request):
        query = self.query()
        metric = query.metric or "on_time_pct"
        series = selectors.metric_series(
            actor=self.actor, filters=query.filters, metric=metric, group=query.group
        )
        if self.export_format:
            table = exports.series_table(
                series, metric=metric, filters=query.filters, group=query.group
            )
            return self.download(table, query)
        return Response(
            {
                "period": answers.period(query.filters),
                "group": query.group,
                "metric": answers.metric_definition(METRICS[metric]),
                "series": [
                    {
                        "key": line.key,
                        "label": line.label,
                        "points": [
                            {"date": day.isoformat(), "value": value} for day, value in line.points
                        ],
                    }
                    for line in series
                ],
                "exports": self.export_links(query, metric=metric),
            }
        )


class BreakdownView(ReportView):
    """Counts by category per group value; subclasses name the selector and the table."""

    name: str
    title: str

    def breakdown(self, query: ReportQuery):
        raise NotImplementedError

    def get(self, request):
        query = self.query()
        result = self.breakdown(query)
        if self.export_format:
            table = exports.breakdown_table(
                result, name=self.name, title=self.title, filters=query.filters, group=query.group
            )
            return self.download(table, query)
        return Response(
            {
                "period": answers.period(query.filters),
                "group": query.group,
                **answers.breakdown(result),
                "exports": self.export_links(query),
            }
        )


_breakdown_schema = extend_schema(
    parameters=FILTER_PARAMETERS, responses=_answers(BreakdownAnswerSerializer)
)


@extend_schema(summary="Failed attempts by reason (the reason taxonomy) per group value")
class FailureReasonsView(BreakdownView):
    name, title = "failure_reasons", "Failed attempts by reason"

    @_breakdown_schema
    def get(self, request):
        return super().get(request)

    def breakdown(self, query):
        return selectors.failure_reasons(actor=self.actor, filters=query.filters, group=query.group)


class ExceptionsView(BreakdownView):
    name, title = "exceptions", "Exceptions by kind"

    @extend_schema(summary="Exceptions (alerts) by kind per group value")
    @_breakdown_schema
    def get(self, request):
        return super().get(request)

    def breakdown(self, query):
        return selectors.exceptions_by_kind(
            actor=self.actor, filters=query.filters, group=query.group
        )


class LatenessView(BreakdownView):
    name, title = "lateness", "Late deliveries by minutes late"

    @extend_schema(summary="Late deliveries by bucket of minutes late per group value")
    @_breakdown_schema
    def get(self, request):
        return super().get(request)

    def breakdown(self, query):
        return selectors.lateness_distribution(
            actor=self.actor, filters=query.filters, group=query.group
        )


def _positive_int(params, name: str, default: int) -> int:
    text = params.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInput.on(name, f"`{name}` must be a whole number.") from None
    if value < 1:
        raise InvalidInput.on(name, f"`{name}` must be 1 or more.")
    return value


class DrilldownView(ReportView):
    @extend_schema(
        summary="The deliveries, attempts, stops or routes behind a number, a page at a time",
        parameters=[
            *FILTER_PARAMETERS,
            _param("metric", "The metric whose rows to list (required).", enum=list(METRICS)),
            _param(
                "outcome",
                "Which rows (default: the metric's own, e.g. late); for failed_attempts a "
                "failure reason, for exceptions_per_100 an alert kind.",
            ),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="At most 500."),
        ],
        responses=_answers(DrilldownAnswerSerializer),
    )
    def get(self, request):
        query = self.query()
        if query.metric is None:
            raise InvalidInput.on("metric", "Name the metric to drill into, e.g. on_time_pct.")
        params = request.query_params
        outcome = params.get("outcome") or None
        if self.export_format:
            return self.download(self._all_rows(query, outcome), query)
        page = _positive_int(params, "page", 1)
        page_size = min(_positive_int(params, "page_size", 50), DRILLDOWN_MAX_PAGE_SIZE)
        drill = selectors.drilldown(
            actor=self.actor,
            filters=query.filters,
            metric=query.metric,
            outcome=outcome,
            page=page,
            page_size=page_size,
        )
        url = request.build_absolute_uri()
        has_next = page * page_size < drill.count
        previous_url = None
        if page > 1:
            previous_url = (
                replace_query_param(url, "page", page - 1)
                if page > 2
                else remove_query_param(url, "page")
            )
        return Response(
            {
                "count": drill.count,
                "next": replace_query_param(url, "page", page + 1) if has_next else None,
                "previous": previous_url,
                "metric": drill.metric,
                "outcome": drill.outcome,
                "columns": [{"key": key, "label": label} for key, label in drill.columns],
                "results": drill.rows,
                "exports": self.export_links(query, outcome=outcome),
            }
        )

    def _all_rows(self, query: ReportQuery, outcome: str | None) -> exports.Table:
        page, rows, drill = 1, [], None
        while True:
            drill = selectors.drilldown(
                actor=self.actor,
                filters=query.filters,
                metric=query.metric,
                outcome=outcome,
                page=page,
                page_size=DRILLDOWN_MAX_PAGE_SIZE,
            )
            rows.extend(drill.rows)
            if not drill.rows or len(rows) >= min(drill.count, EXPORT_MAX_ROWS):
                break
            page += 1
        drill.rows = rows[:EXPORT_MAX_ROWS]
        return exports.drilldown_table(drill, filters=query.filters)


class PlanningHistoryView(ReportView):
    @extend_schema(
        summary="Actual dwell and transit per area, address or hour (for route planning)",
        parameters=[
            *FILTER_PARAMETERS,
            _param("by", "area (default), address or hour.", enum=list(PLANNING_BY)),
        ],
        responses=_answers(PlanningHistoryAnswerSerializer),
    )
    def get(self, request):
        query = self.query()
        by = request.query_params.get("by") or "area"
        if by not in PLANNING_BY:
            raise InvalidInput.on("by", f"Choose one of: {', '.join(PLANNING_BY)}.")
        rows = selectors.planning_history(actor=self.actor, filters=query.filters, by=by)
        if self.export_format:
            table = exports.planning_history_table(rows, by=by, filters=query.filters)
            return self.download(table, query)
        return Response(
            {
                "period": answers.period(query.filters),
                "by": by,
                "count": len(rows),
                "results": rows,
                "exports": self.export_links(query, by=by),
            }
        )


class RecomputeView(TenantAPIView):
    """POST: re-derive the roll-ups of a range of days from the raw rows, in the background."""

    resource = Resource.REPORTS

    @extend_schema(
        summary="Recompute the daily roll-ups of a range of days (REPORTS write)",
        request=RecomputeSerializer,
        responses={202: RecomputeAnswerSerializer},
    )
    def post(self, request):
        body = RecomputeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        date_from, date_to = body.validated_data["date_from"], body.validated_data["date_to"]
        days = [date_from + timedelta(days=i) for i in range((date_to - date_from).days + 1)]
        # Durable first: a dirty mark per day (the roll-up beat recomputes marked days), then
        # a nudge to the worker after commit so it does not wait for the next beat.
        with transaction.atomic():
            mark_dirty(organization_id=self.actor.organization.pk, days=days)
            enqueue_on_commit(SLA_ROLLUP_DIRTY)
        return Response(
            {
                "date_from": date_from.isoformat(),
                "date_to": date_to.isoformat(),
                "days": (date_to - date_from).days + 1,
                "status": "queued",
            },
            status=status.HTTP_202_ACCEPTED,
        )


class ScorecardEmailViewSet(TenantModelViewSet):
    """Weekly scorecard e-mails. Organization data: carrier users and carrier-bound keys see
    none (tenancy/carrier_scope.py ORGANIZATION_ONLY) and cannot create any."""

    model = ScorecardEmail
    resource = Resource.REPORTS
    serializer_class = ScorecardEmailSerializer
    filterset_fields = ["is_active", "weekday"]
    search_fields = ["name"]
    ordering_fields = ["name", "weekday", "hour", "created_at"]
    ordering = ["name", "id"]

    def optimize_queryset(self, queryset):
        return queryset.prefetch_related("recipients", "carriers")

    @extend_schema(
        summary="Send this scorecard e-mail now to every recipient",
        request=None,
        responses=SendNowAnswerSerializer,
    )
    @action(detail=True, methods=["post"], url_path="send-now")
    def send_now(self, request, pk=None):
        outcome = digest.scorecard_email_send(schedule=self.get_object())
        return Response(
            {"sent": outcome.sent, "skipped": outcome.skipped, "failed": outcome.failed}
        )
