"""The data of each /reports/ page: one call per page to the SLA selectors (which narrow to what
the actor may see), turned into what the templates lay out (view_models, charts)."""

from __future__ import annotations

from datetime import date

from carriers.models import Carrier
from carriers.sla import selectors
from carriers.sla.metrics import METRICS
from carriers.sla.query import ReportQuery, query_string
from carriers.sla.types import GROUPS, Scorecard
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from portal.reports import charts
from portal.reports.view_models import (
    COMPARE_URL,
    REPORTS_URL,
    ROLLUP_COMMAND,
    compare_blocks,
    export_links,
    format_cell,
    has_data,
    outcome_label,
    outcome_links,
    period_words,
    quick_picks,
    scorecard_table,
)
from tracking.models import Hub, ServiceType

GROUP_LABELS = {
    "carrier": "Carrier",
    "hub": "Hub",
    "region": "Region",
    "driver": "Driver",
    "day": "Day",
    "service_type": "Service type",
}
assert set(GROUP_LABELS) == set(GROUPS)


def filter_options(*, actor: Actor) -> dict:
    """The choices of the filters form: only what the actor may see (a carrier user: its own
    carrier)."""
    hubs = list(visible_to(actor, Hub).order_by("name").values("pk", "name", "region"))
    return {
        "carriers": list(visible_to(actor, Carrier).order_by("name").values("pk", "name")),
        "hubs": hubs,
        "regions": sorted({hub["region"] for hub in hubs if hub["region"]}),
        "service_types": [{"value": v, "label": label} for v, label in ServiceType.choices],
        "groups": [{"value": key, "label": GROUP_LABELS[key]} for key in GROUPS],
    }


def narrowing_words(options: dict, query: ReportQuery) -> list[str]:
    """The active narrowing in words ("Carrier: Andes 3PL"), for the pages without the form."""
    filters = query.filters
    names = {
        "Carrier": [c["name"] for c in options["carriers"] if c["pk"] in filters.carrier_ids],
        "Hub": [h["name"] for h in options["hubs"] if h["pk"] in filters.hub_ids],
        "Region": list(filters.regions),
        "Service type": [
            s["label"] for s in options["service_types"] if s["value"] in filters.service_types
        ],
        "Driver ids": [str(pk) for pk in filters.driver_ids],
    }
    return [f"{label}: {', '.join(values)}" for label, values in names.items() if values]


def common_context(*, actor: Actor, query: ReportQuery, url: str = REPORTS_URL) -> dict:
    filters = query.filters
    options = filter_options(actor=actor)
    return {
        "query": query,
        "qs": query_string(query),
        "date_from": filters.date_from.isoformat(),
        "date_to": filters.date_to.isoformat(),
        "period": period_words(filters.date_from, filters.date_to),
        "previous_period": (
            period_words(filters.previous().date_from, filters.previous().date_to)
            if query.compare
            else None
        ),
        "time_zone": actor.organization.time_zone,
        "options": options,
        "narrowing": narrowing_words(options, query),
        "selected": {
            "carrier": {str(pk) for pk in filters.carrier_ids},
            "hub": {str(pk) for pk in filters.hub_ids},
            "region": set(filters.regions),
            "service_type": set(filters.service_types),
        },
        "quick_picks": quick_picks(actor, query, url),
        "rollup_command": f"{ROLLUP_COMMAND} --org {actor.organization.slug} "
        f"--from {filters.date_from} --to {filters.date_to}",
        "compare_url": COMPARE_URL + "?" + query_string(query),
        # The other reports' tabs keep the period and narrowing, not what only this one reads
        # (the ETA accuracy page groups by other things than the scorecard).
        "tab_qs": query_string(query, group=None, metric=None, compare=None),
    }


def _chart_group(query: ReportQuery) -> str:
    # A line per day of a "day" row would be one point each: chart those per carrier.
    return "carrier" if query.group == "day" else query.group


def _colours(*, actor: Actor, group: str, keys) -> dict[str, str]:
    if group == "carrier":
        # Every carrier the actor can see, so a carrier keeps its colour under any filter.
        keys = [*keys, *visible_to(actor, Carrier).values_list("pk", flat=True)]
    return charts.palette_for(keys)


def _common_target(card: Scorecard, metric: str) -> float | None:
    targets = {
        row.metrics[metric].target
        for row in card.rows
        if metric in row.metrics and row.metrics[metric].target is not None
    }
    return targets.pop() if len(targets) == 1 else None


def scorecard_page(*, actor: Actor, query: ReportQuery) -> dict:
    card = selectors.scorecard(
        actor=actor, filters=query.filters, group=query.group, compare=query.compare
    )
    context = common_context(actor=actor, query=query)
    table = scorecard_table(card, query)
    context.update(table=table, group_label=GROUP_LABELS[card.group])
    context["exports"] = export_links("scorecard", query)
    if not has_data(card):
        context["charts"] = []
        return context
    group = _chart_group(query)
    series = selectors.metric_series(
        actor=actor, filters=query.filters, metric="on_time_pct", group=group
    )
    reasons = selectors.failure_reasons(actor=actor, filters=query.filters, group=group)
    lateness = selectors.lateness_distribution(actor=actor, filters=query.filters, group=group)
    kinds = selectors.exceptions_by_kind(actor=actor, filters=query.filters, group=group)
    by = GROUP_LABELS[group].lower()
    context["charts"] = [
        {
            "chart": charts.line_chart(
                chart_id="chart-on-time",
                title=f"On-time rate per {by}, by day",
                description=f"Share of deliveries inside the promised window each service day, "
                f"one line per {by}, {context['period']}; the dashed line is the target.",
                series=series,
                unit="%",
                y_label="On time (%)",
                target=_common_target(card, "on_time_pct"),
                colours=_colours(actor=actor, group=group, keys=[s.key for s in series]),
            ),
            "exports": export_links("trend", query, metric="on_time_pct", group=group),
        },
        {
            "chart": charts.stacked_bars(
                chart_id="chart-failures",
                title=f"Failed attempts by reason, per {by}",
                description=f"Failed delivery attempts per {by}, stacked by reason, "
                f"{context['period']}.",
                breakdown=reasons,
                y_label="Failed attempts",
                x_label=GROUP_LABELS[group],
            ),
            "exports": export_links("failure-reasons", query, group=group),
        },
        {
            "chart": charts.histogram(
                chart_id="chart-lateness",
                title="Lateness distribution",
                description=f"Late deliveries by minutes past the promised window, "
                f"{context['period']}.",
                breakdown=lateness,
                y_label="Late deliveries",
                x_label="Minutes late",
            ),
            "exports": export_links("lateness", query, group=group),
        },
        {
            "chart": charts.stacked_bars(
                chart_id="chart-exceptions",
                title=f"Exceptions by kind, per {by}",
                description=f"Alerts raised per {by}, stacked by kind, {context['period']}.",
                breakdown=kinds,
                y_label="Alerts",
                x_label=GROUP_LABELS[group],
            ),
            "exports": export_links("exceptions", query, group=group),
        },
    ]
    return context


def drilldown_page(
    *, actor: Actor, query: ReportQuery, metric: str, outcome: str | None, page: int
) -> dict:
    result = selectors.drilldown(
        actor=actor, filters=query.filters, metric=metric, outcome=outcome, page=page
    )
    context = common_context(actor=actor, query=query)
    zone = actor.organization.zone
    pages = max(1, -(-result.count // result.page_size))

    def page_url(number: int) -> str:
        return "?" + query_string(query, metric=metric, outcome=outcome, page=number)

    context.update(
        metric=METRICS[metric],
        outcome=result.outcome,
        outcome_label=outcome_label(metric, result.outcome),
        outcomes=outcome_links(query, metric, result.outcome),
        result=result,
        columns=result.columns,
        rows=[
            {
                "cells": [format_cell(row.get(key), zone) for key, _ in result.columns],
                "links": row.get("links", {}),
            }
            for row in result.rows
        ],
        pages=pages,
        previous_url=page_url(result.page - 1) if result.page > 1 else None,
        next_url=page_url(result.page + 1) if result.page < pages else None,
        first_shown=(result.page - 1) * result.page_size + 1 if result.rows else 0,
        last_shown=(result.page - 1) * result.page_size + len(result.rows),
        back_url=REPORTS_URL + "?" + query_string(query, metric=None),
        exports=export_links("drilldown", query, metric=metric, outcome=outcome),
    )
    return context


def compare_page(
    *, actor: Actor, query_a: ReportQuery, period_b: tuple[date, date], query_b: ReportQuery
) -> dict:
    card_a = selectors.scorecard(
        actor=actor, filters=query_a.filters, group=query_a.group, compare=False
    )
    card_b = selectors.scorecard(
        actor=actor, filters=query_b.filters, group=query_b.group, compare=False
    )
    context = common_context(actor=actor, query=query_a, url=COMPARE_URL)
    context.update(
        period_a=period_words(query_a.filters.date_from, query_a.filters.date_to),
        period_b=period_words(*period_b),
        from_b=period_b[0].isoformat(),
        to_b=period_b[1].isoformat(),
        blocks=compare_blocks(card_a, card_b),
        empty=not (has_data(card_a) or has_data(card_b)),
        group_label=GROUP_LABELS[query_a.group],
        exports_a=export_links("scorecard", query_a, compare="false"),
        exports_b=export_links("scorecard", query_b, compare="false"),
    )
    return context
