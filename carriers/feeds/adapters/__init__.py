"""The adapter registry: adapter name -> module (the interface is in `adapters/base.py`)."""

from __future__ import annotations

from types import ModuleType

from carriers.feeds.adapters import aftership, generic_json, native
from carriers.feeds.adapters.base import (
    CarrierStatusEvent,
    FeedMapping,
    NormalizedEvent,
    normalize,
)
from tracking.models import FailureReason, ScanType

ADAPTERS: dict[str, ModuleType] = {
    module.NAME: module for module in (native, generic_json, aftership)
}
ADAPTER_CHOICES = [(name, module.TITLE) for name, module in ADAPTERS.items()]


def adapter_named(name: str) -> ModuleType:
    return ADAPTERS[name]


def mapping_for(name: str, config: dict) -> FeedMapping:
    """The adapter's tables with the feed's own `status_map` / `reason_map` on top."""
    module = ADAPTERS[name]
    return FeedMapping(
        status_map={**module.STATUS_MAP, **(config.get("status_map") or {})},
        reason_map={**module.REASON_MAP, **(config.get("reason_map") or {})},
        status_candidates=getattr(module, "status_candidates", lambda code: [code]),
    )


def config_problems(name: str, config) -> dict[str, list[str]]:
    """Everything wrong with a feed's config for adapter `name`, by config path (empty: fine)."""
    if name not in ADAPTERS:
        return {"adapter": [f"Choose one of: {', '.join(ADAPTERS)}."]}
    if not isinstance(config, dict):
        return {"config": ["Must be a JSON object."]}
    problems: dict[str, list[str]] = {}
    for key, allowed, label in (
        ("status_map", set(ScanType.values), "a scan type"),
        ("reason_map", set(FailureReason.values), "a failure reason"),
    ):
        table = config.get(key, {})
        if not isinstance(table, dict):
            problems[f"config.{key}"] = ["Must be an object: carrier code -> platform code."]
            continue
        for code, target in table.items():
            if key == "status_map" and target is None:
                continue  # a known code that records nothing
            if target not in allowed:
                problems[f"config.{key}.{code}"] = [
                    f"{target!r} is not {label}; choose one of: {', '.join(sorted(allowed))}"
                    + (" (or null)." if key == "status_map" else ".")
                ]
    zone = config.get("timezone")
    if zone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            problems["config.timezone"] = [f"Unknown time zone {zone!r} (e.g. America/Santiago)."]
    columns = config.get("columns", {})
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in columns.items()
    ):
        problems["config.columns"] = ["Must be an object: platform field -> the file's header."]
    validate = getattr(ADAPTERS[name], "validate_config", None)
    if validate is not None:
        problems.update(validate(config))
    return problems


__all__ = [
    "ADAPTERS",
    "ADAPTER_CHOICES",
    "CarrierStatusEvent",
    "NormalizedEvent",
    "adapter_named",
    "config_problems",
    "mapping_for",
    "normalize",
]
