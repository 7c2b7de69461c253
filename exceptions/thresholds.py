"""The thresholds the rules read: a carrier's override, else the organization's row, else the
defaults below, field by field. Rules run on every sweep for every route, so the merged result
is remembered per process for a few seconds; an edit shows up within that time."""

from __future__ import annotations

from dataclasses import dataclass, fields

from control_tower.caches import LocalCache
from control_tower.tenancy.scope import organization_scope

DEFAULTS: dict[str, object] = {
    "predicted_late_p50": True,
    "stalled_min": 10,
    "stalled_radius_m": 50,
    "signal_lost_min": 10,
    "off_route_m": 300,
    "off_route_s": 120,
    "long_dwell_factor": 1.5,
    "long_dwell_margin_min": 5,
    "pod_far_m": 150,
    "route_not_started_min": 20,
    "battery_low_pct": 15,
    "escalate_after_min": 15,
}

CACHE_S = 30.0


@dataclass(frozen=True)
class Thresholds:
    predicted_late_p50: bool
    stalled_min: int
    stalled_radius_m: int
    signal_lost_min: int
    off_route_m: int
    off_route_s: int
    long_dwell_factor: float
    long_dwell_margin_min: int
    pod_far_m: int
    route_not_started_min: int
    battery_low_pct: int
    escalate_after_min: int


_cache = LocalCache(maxsize=5_000, ttl_s=CACHE_S)


def _load(organization_id: int, carrier_id: int | None) -> Thresholds:
    from control_tower.models import Organization
    from exceptions.models import AlertThresholds

    organization = Organization.objects.get(pk=organization_id)
    values = dict(DEFAULTS)
    # The organization's POD geofence is the setting people already know; it is the default.
    values["pod_far_m"] = organization.pod_geofence_m
    with organization_scope(organization):
        rows = {
            row.carrier_id: row
            for row in AlertThresholds.objects.filter(carrier_id__isnull=True)
            | AlertThresholds.objects.filter(carrier_id=carrier_id)
        }
    for key in (None, carrier_id) if carrier_id is not None else (None,):
        row = rows.get(key)
        if row is None:
            continue
        for field in fields(Thresholds):
            value = getattr(row, field.name)
            if value is not None:
                values[field.name] = value
    return Thresholds(**values)


def thresholds_for(organization_id: int, carrier_id: int | None) -> Thresholds:
    """The thresholds in force for a carrier of an organization (carrier None: the org's)."""
    return _cache.get_or_set(
        (organization_id, carrier_id), lambda: _load(organization_id, carrier_id)
    )


def forget_thresholds(organization_id: int) -> None:
    """Drop this process's cached thresholds of an organization (after an edit)."""
    _cache.discard_where(lambda key, _value: key[0] == organization_id)
