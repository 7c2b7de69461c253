"""Device tokens: their kind prefix, and what each process remembers about verified ones.

A phone reports every few seconds: remembering a verified token for DEVICE_AUTH_CACHE_S seconds
saves the lookup on almost every request. The price: a revoked or rotated token keeps working in
*other* worker processes for up to that long (this process forgets it at once, through
`forget_device`). Both ingest paths (the Django views and the ASGI fast path) keep their answers
here, so the service that revokes a device clears them without importing either path.
"""

from __future__ import annotations

from django.conf import settings

from control_tower.caches import LocalCache

DEVICE_TOKEN_KIND = "ctd"


def _ttl_s() -> float:
    return settings.DEVICE_AUTH_CACHE_S


verified_devices = LocalCache(maxsize=20_000, ttl_s=_ttl_s)  # raw token -> Device
verified_refs = LocalCache(maxsize=20_000, ttl_s=_ttl_s)  # raw token -> fast-path DeviceRef


def forget_device(device_id: int) -> None:
    """Drop this process's cached verifications of a device (revoked, or its token rotated)."""
    for cache in (verified_devices, verified_refs):
        cache.discard_where(lambda _raw, device: device.id == device_id)
