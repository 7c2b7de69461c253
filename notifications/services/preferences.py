"""Recipients' consent: opting out (unsubscribe link, SMS STOP, API, admin) and back in."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from notifications.addresses import normalize_email, normalize_phone
from notifications.models import Channel, ContactPreference, NotificationSettings

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "BAJA", "ALTO"}
START_WORDS = {"START", "UNSTOP", "ALTA"}


def normalize_address(channel: str, raw: str, *, region: str = "") -> str:
    """Raises InvalidAddress."""
    if channel == Channel.EMAIL:
        return normalize_email(raw)
    return normalize_phone(raw, region=region)


@transaction.atomic
def contact_preference_set(
    *, organization, channel: str, address: str, state: str, source: str
) -> ContactPreference:
    """Record what the recipient said (the address already normalized); the latest word wins."""
    with organization_scope(organization):
        preference, _ = ContactPreference.objects.update_or_create(
            channel=channel,
            address=address,
            defaults={"state": state, "source": source, "at": timezone.now()},
        )
        return preference


def organizations_for_sms_number(to_number: str) -> list[Organization]:
    """The organizations whose SMS sender is `to_number`; with none, every organization on
    the default sender (an inbound STOP to the shared number opts out of all of them)."""
    senders = NotificationSettings.dangerously_unscoped.exclude(sms_sender="")
    own = [s.organization_id for s in senders if s.sms_sender == to_number]
    if own:
        return list(Organization.objects.filter(pk__in=own))
    custom = {s.organization_id for s in senders}
    return list(Organization.objects.exclude(pk__in=custom))


def inbound_keyword(body: str) -> str:
    """ "stop", "start" or "" for the first word of an inbound SMS."""
    words = (body or "").strip().upper().split()
    if not words:
        return ""
    word = words[0].strip(".!¡")
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return ""
