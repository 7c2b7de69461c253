"""The SLA metrics, named once: key, label, unit, which way is better, and the Carrier SLA
policy field that holds its target. Scorecards, exports, charts and the weekly e-mail all read
this table, so a metric is defined, labelled and judged in one place (docs/REPORTS.md)."""

from __future__ import annotations

from dataclasses import dataclass


class Unit:
    PCT = "pct"
    MIN = "min"
    COUNT = "count"
    PER_100 = "per_100"
    STARS = "stars"
    PER_HOUR = "per_hour"
    KM = "km"


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    # True: higher is better; False: lower is better; None: a volume, never judged.
    higher_is_better: bool | None
    # The Carrier field holding the target (carriers/models.py SLA_POLICY_FIELDS), or None.
    target_field: str | None
    description: str
    # The outcome a drill-down from this number lists by default (selectors.drilldown).
    drill_outcome: str | None = None


_METRICS = [
    Metric(
        "on_time_pct",
        "On time",
        Unit.PCT,
        True,
        "sla_on_time_target_pct",
        "Delivered inside the promised window (plus the carrier's grace minutes), of deliveries "
        "with a promised window.",
        "late",
    ),
    Metric(
        "early_pct",
        "Early",
        Unit.PCT,
        None,
        None,
        "Delivered before the promised window opened.",
        "early",
    ),
    Metric(
        "late_pct",
        "Late",
        Unit.PCT,
        False,
        None,
        "Delivered after the promised window closed (plus grace).",
        "late",
    ),
    Metric(
        "first_attempt_pct",
        "First-attempt success",
        Unit.PCT,
        True,
        "sla_first_attempt_target_pct",
        "Shipments delivered on their first attempt, of shipments first attempted in the period.",
        "not_first_attempt",
    ),
    Metric(
        "lateness_avg_min",
        "Average lateness",
        Unit.MIN,
        False,
        None,
        "Mean minutes past the window's end, over late deliveries.",
        "late",
    ),
    Metric(
        "lateness_p90_min",
        "P90 lateness",
        Unit.MIN,
        False,
        "sla_p90_lateness_target_min",
        "90th percentile of minutes past the window's end, over late deliveries.",
        "late",
    ),
    Metric(
        "failed_attempts",
        "Failed attempts",
        Unit.COUNT,
        None,
        None,
        "Delivery attempts that failed, by reason (the reason taxonomy).",
        "failed",
    ),
    Metric(
        "exceptions_per_100",
        "Exceptions per 100 stops",
        Unit.PER_100,
        False,
        "sla_exceptions_per_100_target",
        "Alerts raised on the carrier's routes per 100 stops, by kind.",
        "exception",
    ),
    Metric(
        "pod_compliance_pct",
        "POD compliance",
        Unit.PCT,
        True,
        "sla_pod_compliance_target_pct",
        "Deliveries whose proof has what the carrier's policy requires (photo, signature, "
        "captured near the address).",
        "pod_missing",
    ),
    Metric(
        "scan_compliance_pct",
        "Scan compliance",
        Unit.PCT,
        True,
        "sla_scan_compliance_target_pct",
        "Deliveries with every required scan present and in order.",
        "scan_missing",
    ),
    Metric(
        "tracking_coverage_pct",
        "Tracking coverage",
        Unit.PCT,
        True,
        "sla_tracking_coverage_target_pct",
        "Share of route time (start to completion) with a fresh GPS fix.",
        "low_coverage",
    ),
    Metric(
        "eta_mae_min",
        "ETA error (MAE)",
        Unit.MIN,
        False,
        "sla_eta_mae_target_min",
        "Mean absolute error of the ETAs shown to customers before arrival.",
        "eta_off",
    ),
    Metric(
        "eta_window_hit_pct",
        "Arrivals inside the shown window",
        Unit.PCT,
        True,
        None,
        "Arrivals inside the last window shown to the customer before arrival.",
        "eta_off",
    ),
    Metric(
        "rating_avg",
        "Customer rating",
        Unit.STARS,
        True,
        "sla_rating_target",
        "Average stars (1–5) recipients gave the delivery.",
        "low_rating",
    ),
    Metric(
        "stops_per_hour",
        "Stops per hour",
        Unit.PER_HOUR,
        True,
        None,
        "Attempted stops per hour on the road (route start to completion).",
        None,
    ),
    Metric(
        "parcels_per_route",
        "Parcels per route",
        Unit.COUNT,
        True,
        None,
        "Parcels handed over or attempted per completed route.",
        None,
    ),
    Metric(
        "km_per_stop",
        "Km per stop",
        Unit.KM,
        False,
        None,
        "Route kilometres per attempted stop.",
        None,
    ),
    Metric(
        "sequence_adherence_pct",
        "Plan sequence adherence",
        Unit.PCT,
        True,
        None,
        "Stops visited in the planned order.",
        "out_of_sequence",
    ),
    Metric(
        "plan_time_deviation_min",
        "Deviation from planned times",
        Unit.MIN,
        False,
        None,
        "Mean absolute minutes between actual and planned arrival.",
        None,
    ),
    Metric("deliveries", "Deliveries", Unit.COUNT, None, None, "Shipments delivered.", "delivered"),
    Metric("stops", "Stops", Unit.COUNT, None, None, "Stops attempted.", None),
    Metric("routes", "Routes", Unit.COUNT, None, None, "Routes completed.", None),
]

METRICS: dict[str, Metric] = {metric.key: metric for metric in _METRICS}

# The columns of the scorecard table, in order (the rest are in the API and exports).
SCORECARD_COLUMNS = [
    "on_time_pct",
    "first_attempt_pct",
    "lateness_p90_min",
    "failed_attempts",
    "exceptions_per_100",
    "pod_compliance_pct",
    "scan_compliance_pct",
    "tracking_coverage_pct",
    "eta_mae_min",
    "rating_avg",
    "stops_per_hour",
    "deliveries",
]


def judge(metric: Metric, value: float | None, target: float | None) -> str | None:
    """ "pass", "breach", or None when there is no value, no target or the metric is a volume."""
    if value is None or target is None or metric.higher_is_better is None:
        return None
    ok = value >= target if metric.higher_is_better else value <= target
    return "pass" if ok else "breach"
