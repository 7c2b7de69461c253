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
