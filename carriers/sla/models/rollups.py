"""Daily roll-ups: additive counters per (organization, day, carrier, hub, region, driver,
service type), so any period and any grouping is a SUM; means are sums and counts, P90 comes
from summed histogram buckets (`RollupCount`, family "lateness"). docs/SLA_METRICS.md."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from carriers.sla.models.facts import FactDimensions
from control_tower.tenancy.models import TenantModel

# Every additive counter of a DailyRollup row (the selectors sum exactly these).
COUNTERS = (
    "deliveries",
    "judged",
    "on_time",
    "early",
    "late",
    "lateness_sum_min",
    "first_attempts",
    "first_attempt_success",
    "failed_attempts",
    "pod_judged",
    "pod_ok",
    "scan_judged",
    "scan_ok",
    "rating_n",
    "rating_sum",
    "stops",
    "eta_n",
    "eta_error_sum_min",
    "eta_window_n",
    "eta_window_hit",
    "seq_pairs",
    "seq_in_order",
    "plan_dev_n",
    "plan_dev_sum_min",
    "routes",
    "road_s",
    "route_stops",
    "route_parcels",
    "distance_m",
    "distance_stops",
    "span_min",
    "covered_min",
    "alerts",
)

_FLOATS = {"lateness_sum_min", "eta_error_sum_min", "plan_dev_sum_min", "road_s"}


class DailyRollup(FactDimensions):
    id = models.BigAutoField(primary_key=True)
    deliveries = models.IntegerField(default=0)
    judged = models.IntegerField(default=0)  # deliveries with a promised window
    on_time = models.IntegerField(default=0)
    early = models.IntegerField(default=0)
    late = models.IntegerField(default=0)
    lateness_sum_min = models.FloatField(default=0)
    first_attempts = models.IntegerField(default=0)
    first_attempt_success = models.IntegerField(default=0)
    failed_attempts = models.IntegerField(default=0)
    pod_judged = models.IntegerField(default=0)
    pod_ok = models.IntegerField(default=0)
    scan_judged = models.IntegerField(default=0)
    scan_ok = models.IntegerField(default=0)
    rating_n = models.IntegerField(default=0)
    rating_sum = models.IntegerField(default=0)
    stops = models.IntegerField(default=0)  # visited stops
    eta_n = models.IntegerField(default=0)
    eta_error_sum_min = models.FloatField(default=0)
    eta_window_n = models.IntegerField(default=0)
    eta_window_hit = models.IntegerField(default=0)
    seq_pairs = models.IntegerField(default=0)
    seq_in_order = models.IntegerField(default=0)
    plan_dev_n = models.IntegerField(default=0)
    plan_dev_sum_min = models.FloatField(default=0)
    routes = models.IntegerField(default=0)  # completed routes
    road_s = models.FloatField(default=0)
    route_stops = models.IntegerField(default=0)
    route_parcels = models.IntegerField(default=0)
    distance_m = models.BigIntegerField(default=0)
    distance_stops = models.IntegerField(default=0)  # stops of routes with a distance
    span_min = models.IntegerField(default=0)
    covered_min = models.IntegerField(default=0)
    alerts = models.IntegerField(default=0)

    class Meta(FactDimensions.Meta):
        indexes = [
            models.Index(fields=["organization", "day"]),
            models.Index(fields=["organization", "carrier", "day"]),
        ]


class RollupCount(FactDimensions):
    """Counts by category: failed attempts by reason (family "failure"), alerts by kind
    ("alert"), late deliveries by lateness bucket ("lateness", code = the bucket's lower edge
    in minutes)."""

    id = models.BigAutoField(primary_key=True)
    family = models.CharField(max_length=12)
    code = models.CharField(max_length=32)
    n = models.IntegerField()

    class Meta(FactDimensions.Meta):
        indexes = [models.Index(fields=["organization", "family", "day"])]


class DirtyDay(TenantModel):
    """An (organization, day) whose facts are out of date: marked by the event subscriber,
    cleared by the beat task that recomputes it."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    marked_at = models.DateTimeField(default=timezone.now)

    class Meta(TenantModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["organization", "day"], name="sla_dirty_day_once"),
        ]


def is_float_counter(name: str) -> bool:
    return name in _FLOATS
