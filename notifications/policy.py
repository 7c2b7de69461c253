"""An organization's notification policy as the services read it: its settings row (created
with defaults on first use) and each trigger's configuration, with the shipped defaults for
whatever the organization did not set. The defaults are named here, once."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from notifications.models import Channel, NotificationSettings, Trigger, TriggerSetting

EMAIL_AND_SMS = [Channel.EMAIL.value, Channel.SMS.value]

# trigger -> (enabled, channels, parameters). `max_age_min`: an event older than this sends
# nothing, and a message held by quiet hours past this age is dropped.
TRIGGER_DEFAULTS: dict[str, tuple[bool, list[str], dict]] = {
    Trigger.SHIPMENT_CREATED: (True, [Channel.EMAIL.value], {"max_age_min": 24 * 60}),
    Trigger.OUT_FOR_DELIVERY: (True, EMAIL_AND_SMS, {"max_age_min": 4 * 60}),
    Trigger.DRIVER_NEARBY: (
        True,
        [Channel.SMS.value],
        {"stops_away": 3, "minutes_away": 20, "max_age_min": 30},
    ),
    Trigger.ETA_WINDOW_MOVED: (
        True,
        [Channel.SMS.value],
        {"eta_moved_min": 30, "renotify_every_min": 60, "max_age_min": 30},
    ),
    Trigger.DELIVERED: (True, [Channel.EMAIL.value], {"max_age_min": 24 * 60}),
    Trigger.ATTEMPT_FAILED: (True, EMAIL_AND_SMS, {"max_age_min": 12 * 60}),
    Trigger.RESCHEDULED: (True, [Channel.EMAIL.value], {"max_age_min": 24 * 60}),
    Trigger.EXCEPTION_RAISED: (True, [Channel.EMAIL.value], {"max_age_min": 2 * 60}),
    Trigger.FEEDBACK_REQUEST: (
        True,
        [Channel.EMAIL.value],
        {"feedback_delay_min": 120, "max_age_min": 3 * 24 * 60},
    ),
    Trigger.STAFF_ALERT_ESCALATED: (True, [Channel.EMAIL.value], {"max_age_min": 2 * 60}),
}

# Parameters an organization may set, per trigger (the API validates against this).
TRIGGER_PARAMETERS: dict[str, frozenset[str]] = {
    name: frozenset(params) for name, (_on, _channels, params) in TRIGGER_DEFAULTS.items()
}


@dataclass(frozen=True)
class TriggerConfig:
    trigger: str
    enabled: bool
    channels: tuple[str, ...]
    parameters: dict = field(default_factory=dict)

    def param(self, name: str) -> int:
        return int(self.parameters[name])


def settings_for(organization) -> NotificationSettings:
    """The organization's settings row, created with the defaults the first time."""
    found = NotificationSettings.dangerously_unscoped.filter(
        organization_id=organization.pk
    ).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return NotificationSettings.dangerously_unscoped.create(organization=organization)
    except IntegrityError:  # created concurrently
        return NotificationSettings.dangerously_unscoped.get(organization_id=organization.pk)


def trigger_config(organization_id: int, trigger: str) -> TriggerConfig:
    enabled, channels, parameters = TRIGGER_DEFAULTS[trigger]
    row = TriggerSetting.dangerously_unscoped.filter(
        organization_id=organization_id, trigger=trigger
    ).first()
    if row is None:
        return TriggerConfig(trigger, enabled, tuple(channels), dict(parameters))
    merged = {**parameters, **{k: v for k, v in row.parameters.items() if k in parameters}}
    return TriggerConfig(trigger, row.enabled, tuple(row.channels), merged)


def trigger_configs(organization_id: int) -> list[TriggerConfig]:
    return [trigger_config(organization_id, name) for name in TRIGGER_DEFAULTS]
