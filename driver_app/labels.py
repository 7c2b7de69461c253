"""The choices the app offers, and their labels in the person's language.

The values are the platform's own taxonomies (tracking.models.FailureReason, SafePlace,
exceptions.incidents.IncidentKind); the English labels are their `msgid`s, translated with the
project's catalog (locale/es). `gettext_noop` below only marks them so `makemessages` keeps
their translations; `tests/driver_app` checks that every offered label has a Spanish one.
"""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_noop as mark

from exceptions.incidents import IncidentKind
from tracking.models import FailureReason, SafePlace, ScanType

# Reasons a driver can give at the door (customs, a lost parcel or capacity are decided
# elsewhere, by a hub or the carrier's system).
ATTEMPT_REASONS = [
    FailureReason.NOT_HOME,
    FailureReason.REFUSED,
    FailureReason.ADDRESS_NOT_FOUND,
    FailureReason.ACCESS_DENIED,
    FailureReason.DAMAGED,
    FailureReason.OUT_OF_TIME,
    FailureReason.WEATHER,
    FailureReason.VEHICLE,
    FailureReason.OTHER,
]
# Why a stop is left out of the round without going to the door.
SKIP_REASONS = [
    FailureReason.OUT_OF_TIME,
    FailureReason.ADDRESS_NOT_FOUND,
    FailureReason.ACCESS_DENIED,
    FailureReason.WEATHER,
    FailureReason.VEHICLE,
    FailureReason.CAPACITY,
    FailureReason.OTHER,
]
SCAN_TYPES = [ScanType.LOADED, ScanType.OUT_FOR_DELIVERY, ScanType.DELIVERED]

_MARKED = [
    mark("Recipient not home"),
    mark("Refused by recipient"),
    mark("Address problem"),
    mark("No access to the building"),
    mark("Parcel damaged"),
    mark("Ran out of time"),
    mark("Weather"),
    mark("Vehicle problem"),
    mark("Capacity (not loaded, vehicle full)"),
    mark("Other"),
    mark("Handed to the recipient"),
    mark("Handed to someone at the address"),
    mark("Left with a neighbour"),
    mark("Reception or concierge"),
    mark("At the front door"),
    mark("In the mailbox or parcel locker"),
    mark("At the back door or garage"),
    mark("Somewhere else (see the note)"),
    mark("Vehicle breakdown"),
    mark("Accident"),
    mark("Vehicle issue"),
    mark("Loaded on a vehicle"),
    mark("Out for delivery"),
    mark("Delivered"),
]


def _pairs(members) -> list[list[str]]:
    return [[member.value, gettext(member.label)] for member in members]


def choices() -> dict[str, list[list[str]]]:
    """`{name: [[value, label], ...]}` in the active language."""
    return {
        "failure_reasons": _pairs(ATTEMPT_REASONS),
        "skip_reasons": _pairs(SKIP_REASONS),
        "safe_places": _pairs(SafePlace),
        "incident_kinds": _pairs(IncidentKind),
        "scan_types": _pairs(SCAN_TYPES),
    }
