"""Drill-downs: the facts behind a number, a page at a time, each with links to the console's
stop details and the shipment's custody chain. One indexed query for the page, one count."""

from __future__ import annotations

from django.db.models import F, Q

from carriers.sla.models import AlertFact, AttemptFact, DeliveryFact, RouteFact, StopFact
from carriers.sla.narrowing import narrowed
from carriers.sla.types import ReportFilters
from control_tower.tenancy.actors import Actor
from exceptions.models import AlertKind
from tracking.errors import InvalidInput
from tracking.models import FailureReason


def links(*, stop_id: int | None, shipment_id: int | None) -> dict:
    out = {}
    if stop_id is not None:
        out["console"] = f"/console/?stop={stop_id}"
    if shipment_id is not None:
        out["custody"] = f"/api/v1/shipments/{shipment_id}/custody/"
    return out


_DIMENSION_COLUMNS = [
    ("day", "Day"),
    ("carrier_name", "Carrier"),
    ("hub_name", "Hub"),
    ("driver_name", "Driver"),
]
_DIMENSION_VALUES = {
    "carrier_name": F("carrier__name"),
    "hub_name": F("hub__name"),
    "driver_name": F("driver__name"),
}

DELIVERY_COLUMNS = [
    ("reference", "Shipment"),
    *_DIMENSION_COLUMNS,
    ("service_type", "Service"),
    ("delivered_at", "Delivered at"),
    ("window_start", "Window start"),
    ("window_end", "Window end"),
    ("punctuality", "Punctuality"),
    ("lateness_min", "Minutes late"),
    ("attempt_number", "Attempt"),
    ("pod_problem", "Proof missing"),
    ("scan_problem", "Scans"),
    ("rating", "Rating"),
    ("source", "Source"),
]
ATTEMPT_COLUMNS = [
    ("reference", "Shipment"),
    *_DIMENSION_COLUMNS,
    ("service_type", "Service"),
    ("occurred_at", "Attempted at"),
    ("attempt_number", "Attempt"),
    ("outcome", "Outcome"),
    ("reason", "Reason"),
    ("carrier_reason_code", "Carrier's code"),
    ("source", "Source"),
]
STOP_COLUMNS = [
    ("route_code", "Route"),
    ("sequence", "Planned #"),
    *_DIMENSION_COLUMNS,
    ("status", "Status"),
    ("actual_arrival", "Arrived"),
    ("planned_arrival", "Planned arrival"),
    ("plan_deviation_min", "Minutes off plan"),
    ("eta_error_min", "ETA error (min)"),
    ("eta_window_hit", "Inside shown window"),
    ("in_sequence", "In planned order"),
    ("address", "Address"),
]
ROUTE_COLUMNS = [
    ("route_code", "Route"),
    *_DIMENSION_COLUMNS,
    ("started_at", "Started"),
    ("completed_at", "Completed"),
    ("stops", "Stops"),
    ("parcels", "Parcels"),
    ("coverage_pct", "GPS coverage %"),
    ("distance_m", "Planned metres"),
]
ALERT_COLUMNS = [
    ("kind", "Kind"),
    *_DIMENSION_COLUMNS,
    ("started_at", "Started"),
    ("route_code", "Route"),
    ("reference", "Shipment"),
]

# metric -> (fact model, columns, time field for ordering)
_SOURCES = {
    "delivery": (DeliveryFact, DELIVERY_COLUMNS, "delivered_at"),
    "attempt": (AttemptFact, ATTEMPT_COLUMNS, "occurred_at"),
    "stop": (StopFact, STOP_COLUMNS, "actual_arrival"),
    "route": (RouteFact, ROUTE_COLUMNS, "started_at"),
    "alert": (AlertFact, ALERT_COLUMNS, "started_at"),
}


# Which rows a drill-down can list per metric (`_condition` below answers them), with the
# words the page shows: the drill-down page offers the siblings of the one shown, so a person
# who opened "late" can look at "early" (both miss the window) without editing the URL.
_PUNCTUALITY = [("late", "Late"), ("early", "Early"), ("on_time", "On time")]
OUTCOME_CHOICES: dict[str, list[tuple[str, str]]] = {
    **dict.fromkeys(
        ("on_time_pct", "early_pct", "late_pct", "lateness_avg_min", "lateness_p90_min"),
        _PUNCTUALITY,
    ),
    "first_attempt_pct": [
        ("not_first_attempt", "First attempt failed"),
        ("first_attempt", "Delivered on the first attempt"),
    ],
    "failed_attempts": [("failed", "Every reason"), *FailureReason.choices],
    "exceptions_per_100": [("exception", "Every kind"), *AlertKind.choices],
    "pod_compliance_pct": [("pod_missing", "Proof incomplete"), ("pod_ok", "Proof complete")],
    "scan_compliance_pct": [("scan_missing", "Scans missing"), ("scan_ok", "Scans complete")],
    "rating_avg": [("low_rating", "Rated 3 or less"), ("rated", "Every rating")],
    **dict.fromkeys(
        ("eta_mae_min", "eta_window_hit_pct"),
        [("eta_off", "Outside the shown window"), ("eta", "Every ETA")],
    ),
    "sequence_adherence_pct": [
        ("out_of_sequence", "Out of the planned order"),
        ("in_sequence", "In the planned order"),
    ],
    "tracking_coverage_pct": [
        ("low_coverage", "Below the coverage target"),
        ("all", "Every route"),
    ],
}


def _condition(metric: str, outcome: str | None) -> tuple[str, Q]:
    """Which facts (and which of them) a drill-down from `metric` / `outcome` lists."""
    punctual = ("on_time_pct", "early_pct", "late_pct", "lateness_avg_min", "lateness_p90_min")
    if metric in punctual:
        wanted = outcome or "late"
        if wanted not in ("early", "on_time", "late"):
            raise _bad(metric, ["early", "on_time", "late"])
        return "delivery", Q(punctuality=wanted)
    if metric == "first_attempt_pct":
        options = {
            "not_first_attempt": Q(attempt_number=1, outcome="failed"),
            "first_attempt": Q(attempt_number=1, outcome="delivered"),
        }
        return "attempt", _pick(metric, options, outcome or "not_first_attempt")
    if metric == "failed_attempts":
        if outcome in (None, "failed"):
            return "attempt", Q(outcome="failed")
        if outcome not in FailureReason.values:
            raise _bad(metric, ["failed", *FailureReason.values])
        return "attempt", Q(outcome="failed", reason=outcome)
    if metric == "exceptions_per_100":
        return "alert", Q() if outcome in (None, "exception") else Q(kind=outcome)
    if metric == "pod_compliance_pct":
        options = {"pod_missing": Q(pod_ok=False), "pod_ok": Q(pod_ok=True)}
        return "delivery", _pick(metric, options, outcome or "pod_missing")
    if metric == "scan_compliance_pct":
        options = {"scan_missing": Q(scan_ok=False), "scan_ok": Q(scan_ok=True)}
        return "delivery", _pick(metric, options, outcome or "scan_missing")
    if metric == "rating_avg":
        options = {"low_rating": Q(rating__lte=3), "rated": Q(rating__isnull=False)}
        return "delivery", _pick(metric, options, outcome or "low_rating")
    if metric == "deliveries":
        return "delivery", Q()
    if metric in ("eta_mae_min", "eta_window_hit_pct"):
        options = {"eta_off": Q(eta_window_hit=False), "eta": Q(eta_error_min__isnull=False)}
        return "stop", _pick(metric, options, outcome or "eta_off")
    if metric == "sequence_adherence_pct":
        options = {"out_of_sequence": Q(in_sequence=False), "in_sequence": Q(in_sequence=True)}
        return "stop", _pick(metric, options, outcome or "out_of_sequence")
    if metric in ("stops", "plan_time_deviation_min"):
        return "stop", Q()
    if metric == "tracking_coverage_pct":
        options = {
            "low_coverage": Q(coverage_pct__lt=F("carrier__sla_tracking_coverage_target_pct")),
            "all": Q(),
        }
        return "route", _pick(metric, options, outcome or "low_coverage")
    # Route productivity (stops per hour, parcels per route, km per stop, routes).
    return "route", Q()


def _pick(metric: str, options: dict[str, Q], outcome: str) -> Q:
    if outcome not in options:
        raise _bad(metric, list(options))
    return options[outcome]


def _bad(metric: str, choices: list[str]) -> InvalidInput:
    return InvalidInput(
        f"Unknown outcome for {metric}.", fields={"outcome": [f"Choose one of: {choices}."]}
    )


def drilldown_rows(
    *,
    actor: Actor,
    filters: ReportFilters,
    metric: str,
    outcome: str | None,
    page: int,
    page_size: int,
) -> tuple[list[tuple[str, str]], list[dict], int]:
    source, condition = _condition(metric, outcome)
    model, columns, time_field = _SOURCES[source]
    facts = narrowed(actor, model, filters).filter(condition)
    count = facts.count()
    extra = dict(_DIMENSION_VALUES)
    if source in ("delivery", "attempt", "alert"):
        extra["reference"] = F("shipment__reference")
    if source in ("stop", "route", "alert"):
        extra["route_code"] = F("route__code")
    names = [key for key, _label in columns if key not in extra]
    ids = ["stop_id"] if source != "route" else []
    ids += ["shipment_id"] if source in ("delivery", "attempt", "alert") else []
    values = facts.order_by(f"-{time_field}", "-id").values(*names, *ids, **extra)
    start = (page - 1) * page_size
    rows = []
    for row in values[start : start + page_size]:
        stop_id = row.pop("stop_id", None)
        shipment_id = row.pop("shipment_id", None)
        row["links"] = links(stop_id=stop_id, shipment_id=shipment_id)
        rows.append(row)
    return columns, rows, count
