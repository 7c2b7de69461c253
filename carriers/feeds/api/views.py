"""`/api/v1/carrier-feeds/` (+ `{id}/events/`, `{id}/imports/`, `{id}/reprocess/`),
`/api/v1/carrier-feed-events/`, `/api/v1/carrier-feed-imports/`. Thin: parse, call a
service, answer. Rows are narrowed by the one scope (organization, then carrier): a key bound
to another carrier gets 404 on this carrier's feed."""

from __future__ import annotations

from django.db.models import Count, Q
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from carriers.feeds import services
from carriers.feeds.api.serializers import (
    CarrierFeedSerializer,
    EventBatchResultSerializer,
    FeedImportSerializer,
    ImportUploadSerializer,
    InboundCarrierEventSerializer,
    ReprocessResultSerializer,
)
from carriers.feeds.errors import FeedConfigError
from carriers.feeds.imports import feed_import_file
from carriers.feeds.models import (
    CarrierFeed,
    EventResult,
    EventSource,
    FeedImport,
    ImportKind,
    InboundCarrierEvent,
)
from control_tower.api.base import TenantViewSet
from control_tower.errors import Conflict
from control_tower.tenancy.roles import WRITE, Resource


def _parse(serializer_class, data, **kwargs):
    body = serializer_class(data=data, **kwargs)
    body.is_valid(raise_exception=True)
    return body.validated_data


def _reprocessed(rows, still: int) -> Response:
    return Response(
        {
            "reprocessed": len(rows),
            "still_flagged": still,
            "events": InboundCarrierEventSerializer(rows, many=True).data,
        }
    )


class CarrierFeedViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    TenantViewSet,
):
    """Carrier feeds: configuration is a carriers write (ops managers, admins); posting
    events is a tracking write, importing a manifest a shipments write too. Carrier users and
    carrier-bound keys see their own carrier's feeds only."""

    model = CarrierFeed
    resource = Resource.CARRIERS
    action_resources = {
        "events": Resource.TRACKING,
        "imports": Resource.TRACKING,
        "reprocess": Resource.TRACKING,
    }
    serializer_class = CarrierFeedSerializer
    filterset_fields = ["carrier", "adapter", "is_active"]
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]
    ordering = ["carrier_id", "name", "id"]

    def optimize_queryset(self, queryset):
        if self.action in ("list", "retrieve"):
            return queryset.annotate(flagged_events=Count("events", filter=Q(events__flagged=True)))
        return queryset

    def create(self, request):
        data = _parse(CarrierFeedSerializer, request.data, context=self.get_serializer_context())
        feed = services.feed_create(
            actor=self.actor,
            carrier=data["carrier"],
            name=data["name"],
            adapter=data["adapter"],
            config=data.get("config") or {},
            is_active=data.get("is_active", True),
            signing_secret=data.get("signing_secret", ""),
        )
        return Response(CarrierFeedSerializer(feed).data, status=status.HTTP_201_CREATED)

    def _update(self, request, partial: bool):
        feed = self.get_object()
        data = _parse(
            CarrierFeedSerializer,
            request.data,
            instance=feed,
            partial=partial,
            context=self.get_serializer_context(),
        )
        carrier = data.pop("carrier", None)
        if carrier is not None and carrier.pk != feed.carrier_id:
            raise FeedConfigError(
                "A feed stays with its carrier (its events are that carrier's): create another.",
                fields={"carrier": ["Cannot be changed."]},
            )
        feed = services.feed_update(feed=feed, **data)
        return Response(CarrierFeedSerializer(feed).data)

    def update(self, request, pk=None):
        return self._update(request, partial=False)

    def partial_update(self, request, pk=None):
        return self._update(request, partial=True)

    def _active_feed(self) -> CarrierFeed:
        feed = self.get_object()
        if not feed.is_active:
            raise Conflict("This feed is paused (is_active is false); nothing was stored.")
        return feed

    @extend_schema(request=dict, responses=EventBatchResultSerializer)
    @action(detail=True, methods=["post"])
    def events(self, request, pk=None):
        """The carrier's status webhook: the body goes through the feed's adapter. Every
        event is kept; `result` says what it did (scan results, `unmapped` for an unknown
        code: flagged, not an error; `ignored` for a code mapped to nothing). A replay answers
        `duplicate: true` and changes nothing; a malformed body is a 400 naming the JSON path,
        and nothing is stored."""
        feed = self._active_feed()
        # The raw bytes, before the parser reads the stream: the signature covers them.
        services.feed_verify_signature(feed=feed, body=request.body, headers=request.headers)
        outcomes = services.events_receive(actor=self.actor, feed=feed, payload=request.data)
        return Response(
            {
                "received": len(outcomes),
                "duplicates": sum(o.duplicate for o in outcomes),
                "flagged": sum(o.event.flagged for o in outcomes),
                "duplicate": all(o.duplicate for o in outcomes),
                "results": [o.as_dict() for o in outcomes],
            }
        )

    @extend_schema(request=ImportUploadSerializer, responses={201: FeedImportSerializer})
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def imports(self, request, pk=None):
        """Upload a manifest (creates shipments) or a status file (carrier events), CSV or
        .xlsx. Every row is checked first: any error → 400 `invalid_rows` listing
        `{line, column, message}`, nothing applied. `dry_run` checks and applies nothing."""
        feed = self._active_feed()  # first: another carrier's feed is a 404, whatever the body
        data = _parse(ImportUploadSerializer, request.data)
        if data["kind"] == ImportKind.MANIFEST and not self.actor.can(Resource.SHIPMENTS, WRITE):
            raise PermissionDenied("Importing a manifest creates shipments: your role does not.")
        upload = data["file"]
        record = feed_import_file(
            actor=self.actor,
            feed=feed,
            kind=data["kind"],
            name=upload.name,
            content=upload.read(),
            dry_run=data["dry_run"],
            content_type=getattr(upload, "content_type", "") or "",
        )
        code = status.HTTP_200_OK if record.dry_run else status.HTTP_201_CREATED
        return Response(FeedImportSerializer(record).data, status=code)

    @extend_schema(request=None, responses=ReprocessResultSerializer)
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Apply this feed's flagged events again with its current mapping."""
        feed = self.get_object()
        flagged = InboundCarrierEvent.objects.filter(feed=feed, flagged=True)
        rows = services.events_reprocess(actor=self.actor, events=list(flagged))
        still = InboundCarrierEvent.objects.filter(feed=feed, flagged=True).count()
        return _reprocessed(rows, still)


class InboundEventFilter(filters.FilterSet):
    flagged = filters.BooleanFilter()
    result = filters.MultipleChoiceFilter(choices=EventResult.choices)
    source = filters.ChoiceFilter(choices=EventSource.choices)
    received_after = filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = InboundCarrierEvent
        fields = ["carrier", "feed", "flagged", "result", "source", "feed_import", "shipment"]


class InboundCarrierEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Every carrier event received, newest first (`?flagged=true` for unknown codes)."""

    model = InboundCarrierEvent
    resource = Resource.TRACKING
    serializer_class = InboundCarrierEventSerializer
    filterset_class = InboundEventFilter
    search_fields = ["barcode", "reference", "carrier_status_code", "carrier_reason_code"]
    ordering_fields = ["received_at", "occurred_at"]
    ordering = ["-received_at", "-id"]

    def optimize_queryset(self, queryset):
        return queryset.select_related("shipment")

    @extend_schema(request=None, responses=ReprocessResultSerializer)
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        """Apply this flagged event again with its feed's current mapping."""
        event = self.get_object()
        rows = services.events_reprocess(actor=self.actor, events=[event])
        event.refresh_from_db()
        return _reprocessed(rows, int(event.flagged))


class FeedImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Uploaded files and what became of them (errors by line, summary)."""

    model = FeedImport
    resource = Resource.TRACKING
    serializer_class = FeedImportSerializer
    filterset_fields = ["feed", "carrier", "kind", "state", "dry_run"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at", "-id"]
