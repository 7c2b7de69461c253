"""ETA revisions: a compact history of the windows shown for each stop, so accuracy can be
audited later (only material changes are kept)."""

from __future__ import annotations

from django.db import models

from control_tower.tenancy.models import TenantModel


class EtaRevision(TenantModel):
    stop = models.ForeignKey("tracking.Stop", on_delete=models.CASCADE, related_name="etas")
    computed_at = models.DateTimeField()
    eta = models.DateTimeField()
    earliest = models.DateTimeField()
    latest = models.DateTimeField()
    method = models.CharField(max_length=32, help_text="Which estimator produced it.")

    class Meta(TenantModel.Meta):
        ordering = ["stop", "computed_at"]
        indexes = [models.Index(fields=["organization", "stop", "computed_at"])]

    def __str__(self) -> str:
        return f"stop {self.stop_id} eta {self.eta:%H:%M}"


class EtaModel(TenantModel):
    """A trained ETA model of one organization (quantile regressors for travel-time corrections
    and dwell times), versioned. The newest is used; older ones stay for audits."""

    version = models.PositiveIntegerField()
    trained_at = models.DateTimeField()
    trained_from = models.DateField()
    trained_until = models.DateField(help_text="Days before this date were used.")
    legs = models.PositiveIntegerField()
    dwells = models.PositiveIntegerField()
    fingerprint = models.CharField(max_length=64, help_text="Of the training data.")
    blob = models.BinaryField(help_text="The fitted regressors (pickle).")
    travel_by_hour = models.JSONField(
        default=dict,
        blank=True,
        help_text="Mean actual / free-flow travel time by local hour (hours with enough legs).",
    )
    dwell_factor = models.FloatField(
        null=True, blank=True, help_text="Actual / planned dwell (None: the planned dwell)."
    )
    factors = models.JSONField(
        null=True,
        blank=True,
        help_text="The shrunk travel and dwell tables the live ETAs use (tracking/eta/factors.py).",
    )

    class Meta(TenantModel.Meta):
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "version"], name="eta_model_version"),
        ]

    def __str__(self) -> str:
        return f"ETA model v{self.version}"


class EtaCalibration(TenantModel):
    """Empirical P10–P90 windows of one organization: by bucket of predicted horizon, the P10 and
    P90 of (actual arrival − ETA) when the live estimator is replayed over recent history.
    Versioned; the newest is used live."""

    version = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    computed_from = models.DateField()
    computed_until = models.DateField(help_text="Days before this date were replayed.")
    samples = models.PositiveIntegerField(help_text="Predictions replayed, all buckets.")
    buckets = models.JSONField(
        help_text='{"0-15": {"p10_min": -3.1, "p90_min": 4.2, "n": 812}, ...}; a bucket with '
        "too few samples is absent (the prior spread is used there)."
    )
    fingerprint = models.CharField(max_length=64, help_text="Of the replayed errors.")

    class Meta(TenantModel.Meta):
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "version"], name="eta_calibration_version"
            ),
        ]

    def __str__(self) -> str:
        return f"ETA calibration v{self.version}"
