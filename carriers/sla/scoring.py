"""From summed roll-up counters to metric values: each metric's formula, written once (the
definitions are in docs/SLA_METRICS.md). Pure functions: no database."""

from __future__ import annotations

from carriers.sla.metrics import METRICS, judge
from carriers.sla.models.rollups import COUNTERS
from carriers.sla.rollup.buckets import percentile
from carriers.sla.types import MetricValue

# metric key -> (numerator counter, denominator counter, scale). value = num / den * scale.
RATIOS: dict[str, tuple[str, str, float]] = {
    "on_time_pct": ("on_time", "judged", 100.0),
    "early_pct": ("early", "judged", 100.0),
    "late_pct": ("late", "judged", 100.0),
    "first_attempt_pct": ("first_attempt_success", "first_attempts", 100.0),
    "lateness_avg_min": ("lateness_sum_min", "late", 1.0),
    "exceptions_per_100": ("alerts", "stops", 100.0),
    "pod_compliance_pct": ("pod_ok", "pod_judged", 100.0),
    "scan_compliance_pct": ("scan_ok", "scan_judged", 100.0),
    "tracking_coverage_pct": ("covered_min", "span_min", 100.0),
    "eta_mae_min": ("eta_error_sum_min", "eta_n", 1.0),
    "eta_window_hit_pct": ("eta_window_hit", "eta_window_n", 100.0),
    "rating_avg": ("rating_sum", "rating_n", 1.0),
    "stops_per_hour": ("route_stops", "road_s", 3600.0),
    "parcels_per_route": ("route_parcels", "routes", 1.0),
    "km_per_stop": ("distance_m", "distance_stops", 0.001),
    "sequence_adherence_pct": ("seq_in_order", "seq_pairs", 100.0),
    "plan_time_deviation_min": ("plan_dev_sum_min", "plan_dev_n", 1.0),
}
COUNTS: dict[str, str] = {
    "failed_attempts": "failed_attempts",
    "deliveries": "deliveries",
    "stops": "stops",
    "routes": "routes",
}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# metric key -> how many rows its default drill-down lists (`MetricValue.numerator`), as a
# function of the summed counters; None where the roll-up does not count them (a low-coverage
# route, a low rating depend on a threshold the drill-down applies).
DRILL_COUNTS = {
    "on_time_pct": lambda s: s["late"],
    "early_pct": lambda s: s["early"],
    "late_pct": lambda s: s["late"],
    "first_attempt_pct": lambda s: s["first_attempts"] - s["first_attempt_success"],
    "lateness_avg_min": lambda s: s["late"],
    "lateness_p90_min": lambda s: s["late"],
    "failed_attempts": lambda s: s["failed_attempts"],
    "exceptions_per_100": lambda s: s["alerts"],
    "pod_compliance_pct": lambda s: s["pod_judged"] - s["pod_ok"],
    "scan_compliance_pct": lambda s: s["scan_judged"] - s["scan_ok"],
    "eta_mae_min": lambda s: s["eta_window_n"] - s["eta_window_hit"],
    "eta_window_hit_pct": lambda s: s["eta_window_n"] - s["eta_window_hit"],
    "sequence_adherence_pct": lambda s: s["seq_pairs"] - s["seq_in_order"],
    "deliveries": lambda s: s["deliveries"],
    "stops": lambda s: s["stops"],
    "routes": lambda s: s["routes"],
}
# metric key -> the counter of the population it is computed over (`MetricValue.denominator`).
DENOMINATORS = {
    "on_time_pct": "judged",
    "early_pct": "judged",
    "late_pct": "judged",
    "first_attempt_pct": "first_attempts",
    "lateness_avg_min": "late",
    "lateness_p90_min": "late",
    "exceptions_per_100": "stops",
    "pod_compliance_pct": "pod_judged",
    "scan_compliance_pct": "scan_judged",
    "tracking_coverage_pct": "routes",
    "eta_mae_min": "eta_n",
    "eta_window_hit_pct": "eta_window_n",
    "rating_avg": "rating_n",
    "stops_per_hour": "routes",
    "parcels_per_route": "routes",
    "km_per_stop": "distance_stops",
    "sequence_adherence_pct": "seq_pairs",
    "plan_time_deviation_min": "plan_dev_n",
}


def metric_values(sums: dict, lateness: dict[int, int]) -> dict[str, MetricValue]:
    """Every metric of METRICS from one group's summed counters and lateness histogram
    ({bucket code: count}). A ratio over nothing is None (no data), never 0; with no roll-up
    row at all, counts are None too. `numerator` is how many rows the metric's default
    drill-down lists (late deliveries for the on-time rate), `denominator` the population."""
    counters = {name: int(sums.get(name) or 0) for name in COUNTERS}
    out: dict[str, MetricValue] = {}
    for key in METRICS:
        if key in RATIOS:
            num_name, den_name, scale = RATIOS[key]
            num, den = sums.get(num_name) or 0, sums.get(den_name) or 0
            value = _round(num / den * scale) if den else None
        elif key in COUNTS:
            value = None if not sums else float(sums.get(COUNTS[key]) or 0)
        elif key == "lateness_p90_min":
            value = percentile(lateness, 0.9)
        else:  # a metric added to METRICS without a formula here: shown as no data
            value = None
        drill = DRILL_COUNTS.get(key)
        denominator = DENOMINATORS.get(key)
        out[key] = MetricValue(
            key=key,
            value=value,
            numerator=drill(counters) if drill and sums else None,
            denominator=counters[denominator] if denominator and sums else None,
        )
    return out


def carrier_targets(carrier) -> dict[str, float | None]:
    """Each metric's target from `carrier`'s SLA policy (None: no carrier or no target)."""
    targets: dict[str, float | None] = {}
    for key, metric in METRICS.items():
        raw = getattr(carrier, metric.target_field) if carrier and metric.target_field else None
        targets[key] = None if raw is None else float(raw)
    return targets


def apply_targets(values: dict[str, MetricValue], targets: dict[str, float | None]) -> None:
    for key, value in values.items():
        value.target = targets.get(key)
        value.status = judge(METRICS[key], value.value, value.target)


def apply_previous(values: dict[str, MetricValue], previous: dict[str, MetricValue]) -> None:
    for key, value in values.items():
        before = previous.get(key)
        value.previous = before.value if before else None
        if value.value is not None and value.previous is not None:
            value.delta = round(value.value - value.previous, 2)
