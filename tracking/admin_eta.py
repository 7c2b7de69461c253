"""Admin for the learned ETA state: trained models and window calibrations, read-only (they are
written by `train_eta` and the nightly retrain only) and scoped to the organization."""

from django.contrib import admin

from control_tower.admin_site import ReadOnlyTenantAdmin
from tracking.models import EtaCalibration, EtaModel


@admin.register(EtaModel)
class EtaModelAdmin(ReadOnlyTenantAdmin):
    list_display = ["version", "trained_at", "trained_from", "trained_until", "legs", "dwells"]
    fields = [
        "version",
        "trained_at",
        "trained_from",
        "trained_until",
        "legs",
        "dwells",
        "travel_by_hour",
        "fingerprint",
    ]  # not the pickled regressors
    ordering = ["-trained_until", "-version"]


@admin.register(EtaCalibration)
class EtaCalibrationAdmin(ReadOnlyTenantAdmin):
    list_display = ["version", "created_at", "computed_from", "computed_until", "samples"]
    fields = [
        "version",
        "created_at",
        "computed_from",
        "computed_until",
        "samples",
        "buckets",
        "fingerprint",
    ]
    ordering = ["-computed_until", "-version"]
