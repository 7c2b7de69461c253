"""Reads on shipments, routes and stops."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from tracking.models import DONE_STOP_STATUSES, Route, StopStatus


def routes_with_progress(queryset: QuerySet[Route]) -> QuerySet[Route]:
    """Annotate `stops_total` and `stops_done` (completed, failed or skipped; cancelled stops
    do not count) in the same query. Ordered explicitly: Django drops Meta.ordering on
    aggregating queries, and pagination needs a stable order."""
    return queryset.order_by("-date", "code", "pk").annotate(
        stops_total=Count("stops", filter=~Q(stops__status=StopStatus.CANCELLED), distinct=True),
        stops_done=Count("stops", filter=Q(stops__status__in=DONE_STOP_STATUSES), distinct=True),
    )
