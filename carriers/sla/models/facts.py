"""SLA facts: one row per thing a number counts (a delivery, an attempt, a visited stop, a
completed route, an alert), with the report dimensions copied on, so a drill-down is one
indexed query and a roll-up is one GROUP BY. Rebuilt per (organization, service day) by
`carriers.sla.rollup.recompute_day`; never edited otherwise (docs/SLA_METRICS.md)."""

from __future__ import annotations

from django.db import models

from control_tower.tenancy.models import TenantModel


def _fk(model: str) -> models.ForeignKey:
    # No database constraint and no cascade: facts are a projection rebuilt by day; a deleted
    # source row leaves a stale fact until its day is recomputed (deletes are not in the API).
    return models.ForeignKey(
        model,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )


class Punctuality(models.TextChoices):
    EARLY = "early", "Early"
    ON_TIME = "on_time", "On time"
    LATE = "late", "Late"
    NOT_JUDGED = "", "No promised window"


class FactDimensions(TenantModel):
    """The dimensions every report groups or filters by (the service day is local to the
    organization)."""

    day = models.DateField()
    carrier = _fk("carriers.Carrier")
    hub = _fk("tracking.Hub")
    region = models.CharField(max_length=64, blank=True, default="")
    driver = _fk("carriers.Driver")
    service_type = models.CharField(max_length=16, blank=True, default="")

    class Meta(TenantModel.Meta):
        abstract = True


class AttemptFact(FactDimensions):
    """A delivery attempt of one shipment: a visited delivery stop (each of its shipments) or,
    for shipments never attempted at a stop, a carrier-feed `delivered` / `attempt_failed`
    scan. Attempts after the first delivery are not attempts."""

    id = models.BigAutoField(primary_key=True)
    shipment = _fk("tracking.Shipment")
    stop = _fk("tracking.Stop")
    route = _fk("tracking.Route")
    source = models.CharField(max_length=8)  # "stop" | "scan"
    occurred_at = models.DateTimeField()
    attempt_number = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=10)  # "delivered" | "failed"
    reason = models.CharField(max_length=32, blank=True, default="")
    carrier_reason_code = models.CharField(max_length=64, blank=True, default="")

    class Meta(FactDimensions.Meta):
        indexes = [
            models.Index(fields=["organization", "day", "carrier"]),
            models.Index(fields=["organization", "outcome", "day"]),
        ]


class DeliveryFact(FactDimensions):
    """A delivered shipment, on the local day of its delivery, judged on punctuality, proof
    and scans against its carrier's policy as it stood when the day was computed."""

    id = models.BigAutoField(primary_key=True)
    shipment = _fk("tracking.Shipment")
    stop = _fk("tracking.Stop")
    route = _fk("tracking.Route")
    source = models.CharField(max_length=8)
    delivered_at = models.DateTimeField()
    attempt_number = models.PositiveSmallIntegerField()
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    punctuality = models.CharField(max_length=8, choices=Punctuality.choices, blank=True)
    lateness_min = models.FloatField(null=True, blank=True)
    pod_ok = models.BooleanField(null=True)  # None: the carrier requires no proof
    pod_problem = models.CharField(max_length=64, blank=True, default="")
    scan_ok = models.BooleanField(null=True)  # None: no required scans
    scan_problem = models.CharField(max_length=16, blank=True, default="")
    rating = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta(FactDimensions.Meta):
        indexes = [
            models.Index(fields=["organization", "day", "carrier"]),
            models.Index(fields=["organization", "punctuality", "day"]),
            # The days a late proof or rating must re-judge (rollup/dirty.py).
            models.Index(fields=["organization", "shipment"]),
        ]


class StopFact(FactDimensions):
    """A visited (completed or failed) stop of a route of the day: ETA accuracy, plan
    adherence, dwell and transit for planning. `service_type`: of its first shipment."""

    id = models.BigAutoField(primary_key=True)
    stop = _fk("tracking.Stop")
    route = _fk("tracking.Route")
    sequence = models.PositiveIntegerField()
    status = models.CharField(max_length=12)
    parcels = models.PositiveIntegerField(default=0)
    actual_arrival = models.DateTimeField()
    planned_arrival = models.DateTimeField(null=True, blank=True)
    dwell_s = models.FloatField(null=True, blank=True)
    transit_s = models.FloatField(null=True, blank=True)
    eta_error_min = models.FloatField(null=True, blank=True)
    eta_window_hit = models.BooleanField(null=True)
    in_sequence = models.BooleanField(null=True)  # None: the route's first visited stop
    plan_deviation_min = models.FloatField(null=True, blank=True)
    hour = models.PositiveSmallIntegerField()  # local hour of arrival
    cell = models.CharField(max_length=32)  # grid cell "lat:lon" of SLA_GRID_DEGREES
    address = models.CharField(max_length=300, blank=True, default="")

    class Meta(FactDimensions.Meta):
        indexes = [models.Index(fields=["organization", "day", "carrier"])]


class RouteFact(FactDimensions):
    """A completed route of the day: time on the road, GPS coverage, distance, parcels."""

    id = models.BigAutoField(primary_key=True)
    route = _fk("tracking.Route")
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField()
    road_s = models.FloatField()
    stops = models.PositiveIntegerField()
    parcels = models.PositiveIntegerField()
    distance_m = models.PositiveIntegerField(null=True, blank=True)
    span_min = models.PositiveIntegerField()
    covered_min = models.PositiveIntegerField()
    coverage_pct = models.FloatField()

    class Meta(FactDimensions.Meta):
        indexes = [models.Index(fields=["organization", "day", "carrier"])]


class AlertFact(FactDimensions):
    """An exception (alert) that started on the day."""

    id = models.BigAutoField(primary_key=True)
    alert = _fk("exceptions.Alert")
    route = _fk("tracking.Route")
    stop = _fk("tracking.Stop")
    shipment = _fk("tracking.Shipment")
    kind = models.CharField(max_length=32)
    started_at = models.DateTimeField()

    class Meta(FactDimensions.Meta):
        indexes = [models.Index(fields=["organization", "day", "carrier"])]
