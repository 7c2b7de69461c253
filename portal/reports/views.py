"""The /reports/ pages. Thin: check that the person may read reports, parse the query string
with the one parser of report parameters (carriers/sla/query.py), hand the page its data.
A bad parameter gets a 400 page with the same message as the API's 400."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.shortcuts import render

from carriers.sla.eta_accuracy import accuracy_query
from carriers.sla.query import report_query
from control_tower.errors import DomainError
from control_tower.tenancy.roles import READ, Resource
from portal.reports import eta_page, pages
from portal.reports.view_models import previous_of
from tracking.errors import InvalidInput


def _reader(request):
    actor = request.actor
    if actor is None or not actor.can(Resource.REPORTS, READ):
        raise PermissionDenied("Reports are for ops managers, dispatchers and carrier users.")
    return actor


def _error_page(request, error: DomainError):
    return render(
        request,
        "portal/reports/error.html",
        {"error": error.detail, "code": error.code, "fields": error.fields},
        status=error.status_code,
    )


@login_required
def scorecard(request):
    """The scorecard of a period: carriers (or another group) × metrics, charts below."""
    actor = _reader(request)
    try:
        query = report_query(actor=actor, params=request.GET)
        context = pages.scorecard_page(actor=actor, query=query)
    except DomainError as error:
        return _error_page(request, error)
    return render(request, "portal/reports/scorecard.html", context)


@login_required
def drilldown(request):
    """The stops, deliveries or routes behind a number (`metric`, `outcome`), a page at a time."""
    actor = _reader(request)
    try:
        query = report_query(actor=actor, params=request.GET)
        if query.metric is None:
            raise InvalidInput.on("metric", "Bad report parameter `metric`: choose a metric.")
        page_text = request.GET.get("page", "1")
        if not page_text.isdigit() or int(page_text) < 1:
            raise InvalidInput.on("page", "Bad report parameter `page`: a page number from 1.")
        context = pages.drilldown_page(
            actor=actor,
            query=query,
            metric=query.metric,
            outcome=request.GET.get("outcome") or None,
            page=int(page_text),
        )
    except DomainError as error:
        return _error_page(request, error)
    return render(request, "portal/reports/drilldown.html", context)


@login_required
def compare(request):
    """Two periods side by side: A is `from`/`to`, B is `from_b`/`to_b` (default: the period
    of the same length just before A); every other filter applies to both."""
    actor = _reader(request)
    try:
        query_a = report_query(actor=actor, params=request.GET)
        params_b: QueryDict = request.GET.copy()
        default_b = previous_of(query_a.filters.date_from, query_a.filters.date_to)
        params_b.setlist("from", [request.GET.get("from_b") or default_b[0].isoformat()])
        params_b.setlist("to", [request.GET.get("to_b") or default_b[1].isoformat()])
        try:
            query_b = report_query(actor=actor, params=params_b)
        except InvalidInput as error:
            # Name B's own parameters, not A's, in what the person reads.
            fields = {f"{name}_b" if name in ("from", "to") else name: problems
                      for name, problems in error.fields.items()}  # fmt: skip
            first = next(iter(fields))
            raise InvalidInput(
                f"Bad report parameter `{first}`: {fields[first][0]}", fields=fields
            ) from error
        context = pages.compare_page(
            actor=actor,
            query_a=query_a,
            period_b=(query_b.filters.date_from, query_b.filters.date_to),
            query_b=query_b,
        )
    except DomainError as error:
        return _error_page(request, error)
    return render(request, "portal/reports/compare.html", context)


@login_required
def eta_accuracy(request):
    """How accurate the ETAs shown were, by horizon and by hour, hub, carrier, driver or day."""
    actor = _reader(request)
    try:
        query = accuracy_query(actor=actor, params=request.GET)
        context = eta_page.eta_accuracy_page(actor=actor, query=query)
    except DomainError as error:
        return _error_page(request, error)
    return render(request, "portal/reports/eta_accuracy.html", context)
