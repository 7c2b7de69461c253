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

    class Meta(TenantModel.Meta):
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "version"], name="eta_model_version"),
        ]

    def __str__(self) -> str:
        return f"ETA model v{self.version}"
