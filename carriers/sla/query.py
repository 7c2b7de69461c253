"""Report parameters from a query string, named once: the REST endpoints, the /reports/ pages
and their export links all read `?from=…&to=…&carrier=…` through `report_query`, so a filter
means the same thing everywhere and a bad one gets the same 400."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.utils import timezone

from carriers.models import Carrier, Driver
from carriers.sla.metrics import METRICS
from carriers.sla.types import GROUPS, ReportFilters
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from tracking.errors import InvalidInput
from tracking.models import Hub, ServiceType

# The longest period one report covers (a year and a bit: two quarters compared side by side).
MAX_REPORT_DAYS = 366
DEFAULT_REPORT_DAYS = 7


@dataclass(frozen=True)
class ReportQuery:
    filters: ReportFilters
    group: str = "carrier"
    compare: bool = True
    metric: str | None = None


def local_today(actor: Actor) -> date:
    return timezone.localtime(timezone.now(), actor.organization.zone).date()


def default_period(actor: Actor, days: int = DEFAULT_REPORT_DAYS) -> tuple[date, date]:
    """The last `days` complete service days (yesterday backwards), in the organization's zone."""
    end = local_today(actor) - timedelta(days=1)
    return end - timedelta(days=days - 1), end


def report_query(
    *, actor: Actor, params, groups: tuple[str, ...] = GROUPS, default_group: str = "carrier"
) -> ReportQuery:
    """Parse `params` (a QueryDict or a dict of lists/strings). Raises `InvalidInput` (400
    `validation_error`) naming every bad parameter. Ids of carriers, hubs and drivers the actor
    cannot see are refused like unknown ones (a carrier user cannot ask for another carrier).

    Parameters: `from`, `to` (ISO dates, inclusive; default the last 7 complete days), `carrier`,
    `hub`, `driver` (ids, repeatable or comma-separated), `region`, `service_type` (repeatable),
    `group` (one of `groups`, default `default_group`: the SLA reports' GROUPS and "carrier"
    unless a report groups otherwise, e.g. ETA accuracy), `compare` (true/false, default
    true), `metric` (a METRICS key)."""
    problems: dict[str, list[str]] = {}
    default_from, default_to = default_period(actor)
    date_from = _date(params, "from", default_from, problems)
    date_to = _date(params, "to", default_to, problems)
    if "from" not in problems and "to" not in problems:
        if date_from > date_to:
            problems["from"] = ["`from` must be on or before `to`."]
        elif (date_to - date_from).days + 1 > MAX_REPORT_DAYS:
            problems["to"] = [f"A report covers at most {MAX_REPORT_DAYS} days."]
    carrier_ids = _ids(params, "carrier", visible_to(actor, Carrier), problems)
    hub_ids = _ids(params, "hub", visible_to(actor, Hub), problems)
    driver_ids = _ids(params, "driver", visible_to(actor, Driver), problems)
    regions = tuple(_values(params, "region"))
    service_types = tuple(_values(params, "service_type"))
    unknown = [value for value in service_types if value not in ServiceType.values]
    if unknown:
        problems["service_type"] = [f"Choose from: {', '.join(ServiceType.values)}."]
    group = _one(params, "group") or default_group
    if group not in groups:
        problems["group"] = [f"Choose one of: {', '.join(groups)}."]
    compare_text = (_one(params, "compare") or "true").lower()
    if compare_text not in ("true", "false", "1", "0", "yes", "no"):
        problems["compare"] = ["Use true or false."]
    metric = _one(params, "metric")
    if metric is not None and metric not in METRICS:
        problems["metric"] = [f"Choose one of: {', '.join(METRICS)}."]
    if problems:
        first = next(iter(problems))
        raise InvalidInput(f"Bad report parameter `{first}`: {problems[first][0]}", fields=problems)
    return ReportQuery(
        filters=ReportFilters(
            date_from=date_from,
            date_to=date_to,
            carrier_ids=carrier_ids,
            hub_ids=hub_ids,
            regions=regions,
            service_types=service_types,
            driver_ids=driver_ids,
        ),
        group=group,
        compare=compare_text in ("true", "1", "yes"),
        metric=metric,
    )


def query_string(query: ReportQuery, **overrides) -> str:
    """The query string that `report_query` reads back as `query` (links, exports, drill-downs);
    `overrides` replace or add parameters (None drops one)."""
    from urllib.parse import urlencode

    filters = query.filters
    pairs: dict[str, object] = {
        "from": filters.date_from.isoformat(),
        "to": filters.date_to.isoformat(),
        "carrier": list(filters.carrier_ids),
        "hub": list(filters.hub_ids),
        "driver": list(filters.driver_ids),
        "region": list(filters.regions),
        "service_type": list(filters.service_types),
        "group": query.group,
        "compare": "true" if query.compare else "false",
        "metric": query.metric,
    }
    pairs.update(overrides)
    return urlencode([(k, v) for k, v in pairs.items() if v not in (None, [], "")], doseq=True)


# ---------------------------------------------------------------------------------------------


def _values(params, name: str) -> list[str]:
    if hasattr(params, "getlist"):
        raw = params.getlist(name)
    else:
        raw = params.get(name, [])
        raw = [raw] if isinstance(raw, str | int) else list(raw)
    return [part.strip() for value in raw for part in str(value).split(",") if part.strip()]


def _one(params, name: str) -> str | None:
    values = _values(params, name)
    return values[-1] if values else None


def _date(params, name: str, default: date, problems: dict) -> date:
    text = _one(params, name)
    if text is None:
        return default
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()  # noqa: DTZ007 - a date, no time
    except ValueError:
        problems[name] = [f"Use an ISO date like 2026-03-02 (got {text!r})."]
        return default


def _ids(params, name: str, visible, problems: dict) -> tuple[int, ...]:
    values = _values(params, name)
    if not values:
        return ()
    try:
        ids = {int(value) for value in values}
    except ValueError:
        problems[name] = ["Give numeric ids."]
        return ()
    found = set(visible.filter(pk__in=ids).values_list("pk", flat=True))
    if missing := sorted(ids - found):
        problems[name] = [f"Unknown {name} id(s): {', '.join(map(str, missing))}."]
    return tuple(sorted(found))
