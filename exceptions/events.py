"""The `alert.*` event types. Registered when this module is first imported (exceptions/models.py
imports it, so every process that loads the apps knows them before the relay delivers one).
Every payload is the alert's API representation (`exceptions.representation.alert_data`)."""

from __future__ import annotations

from control_tower.events import EVENT_TYPES, EventType, register_event_type

ALERT_RAISED = "alert.raised"
ALERT_UPDATED = "alert.updated"
ALERT_ACKNOWLEDGED = "alert.acknowledged"
ALERT_ASSIGNED = "alert.assigned"
ALERT_SNOOZED = "alert.snoozed"
ALERT_ESCALATED = "alert.escalated"
ALERT_RESOLVED = "alert.resolved"

_DESCRIPTIONS = {
    ALERT_RAISED: "A rule (or a person) raised an alert.",
    ALERT_UPDATED: "An unresolved alert changed: severity, detail, or it woke from a snooze.",
    ALERT_ACKNOWLEDGED: "Someone acknowledged an alert.",
    ALERT_ASSIGNED: "An alert was assigned to a member.",
    ALERT_SNOOZED: "An alert was snoozed until a given time.",
    ALERT_ESCALATED: "An alert stayed unacknowledged too long: severity up one step.",
    ALERT_RESOLVED: "An alert was resolved, by a person or because its condition ended.",
}

ALERT_EVENT_TYPES = tuple(_DESCRIPTIONS)

for _name, _description in _DESCRIPTIONS.items():
    if _name not in EVENT_TYPES:  # a re-import (autoreload, tests) must not register twice
        register_event_type(EventType(_name, 1, "alert", durable=True, description=_description))
