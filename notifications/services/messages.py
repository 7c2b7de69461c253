"""Creating messages from an intent ("tell the recipient of shipment S that it is out for
delivery"): one row per channel the trigger uses, each admitted or suppressed by the rules
(notifications/rules.py), and a send task queued on commit for those due now.

Runs inside the relay handler's transaction: the rows exist if and only if the event was
handled, and a re-delivered event meets the dedup constraint and creates nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone

from control_tower.tenancy.enqueue import enqueue_on_commit
from notifications.addresses import InvalidAddress, normalize_email, normalize_phone
from notifications.models import (
    Audience,
    Channel,
    Notification,
    NotificationLog,
    Status,
    SuppressionReason,
)
from notifications.policy import settings_for, trigger_config
from notifications.rendering import language_for
from notifications.rules import admission, dedup_key
from tracking.models import TrackingLink

logger = logging.getLogger(__name__)

SEND_TASK = "notifications.send"


@dataclass(frozen=True)
class Intent:
    """What a trigger decided: which trigger, for which occasion (part of the dedup key), when
    it happened, which event said so, extra template variables, and an optional later send."""

    trigger: str
    occasion: str
    occurred_at: datetime
    event_id: UUID | None = None
    variables: dict = field(default_factory=dict)
    send_after: datetime | None = None


def log_row(message: Notification, status: str, detail: str = "", code: str = ""):
    """One entry of a message's delivery log (unsaved: batches insert many at once)."""
    return NotificationLog(
        organization_id=message.organization_id,
        notification=message,
        status=status,
        detail=detail[:500],
        provider_code=code[:40],
    )


def log_status(message: Notification, status: str, detail: str = "", code: str = "") -> None:
    log_row(message, status, detail, code).save()


def organization_zone(organization) -> ZoneInfo:
    return ZoneInfo(organization.time_zone or "UTC")


def shipment_language(shipment) -> str:
    """The language of the shipment's newest tracking link that names one, else the
    organization's default language (es/en shipped; anything else reads en)."""
    chosen = (
        TrackingLink.dangerously_unscoped.filter(shipment_id=shipment.pk)
        .exclude(language="")
        .order_by("-created_at", "-id")
        .values_list("language", flat=True)
        .first()
    )
    return language_for(chosen or shipment.organization.default_language)


def branding(organization) -> dict:
    """Template variables every message of the organization carries."""
    logo_url = ""
    if organization.logo:
        try:
            logo_url = organization.logo.url
        except ValueError:
            logo_url = ""
    return {
        "organization_name": organization.name,
        "support_phone": organization.support_phone,
        "support_email": organization.support_email,
        "primary_color": organization.primary_color,
        "logo_url": logo_url,
    }


def customer_address(shipment, channel: str) -> tuple[str, str]:
    """(normalized address, "") or (raw text, "invalid_address"); ("", "") when none is set."""
    raw = shipment.recipient_email if channel == Channel.EMAIL else shipment.recipient_phone
    raw = (raw or "").strip()
    if not raw:
        return "", ""
    try:
        if channel == Channel.EMAIL:
            return normalize_email(raw), ""
        return normalize_phone(raw, region=shipment.country_code), ""
    except InvalidAddress:
        return raw[:254], SuppressionReason.INVALID_ADDRESS


def notify_customer(*, shipment, intent: Intent) -> list[Notification]:
    """The messages of `intent` to the recipient of `shipment` (none when the trigger is off,
    or for a channel with no address). Returns the rows created (duplicates are skipped)."""
    organization = shipment.organization
    config = trigger_config(organization.pk, intent.trigger)
    if not config.enabled:
        return []
    language = shipment_language(shipment)
    names = (shipment.recipient_name or "").split()
    context = {
        **branding(organization),
        "recipient_first_name": names[0] if names else "",
        "reference": shipment.reference,
        "language": language,
        **intent.variables,
    }
    created = []
    for channel in config.channels:
        address, problem = customer_address(shipment, channel)
        if not address:
            continue
        message = _create(
            organization=organization,
            config=config,
            intent=intent,
            channel=channel,
            audience=Audience.CUSTOMER,
            address=address,
            problem=problem,
            language=language,
            context=context,
            key=dedup_key(
                subject=f"s{shipment.pk}",
                trigger=intent.trigger,
                occasion=intent.occasion,
                channel=channel,
            ),
            shipment=shipment,
            carrier_id=shipment.carrier_id,
        )
        if message is not None:
            created.append(message)
    return created


def notify_staff(
    *, organization, intent: Intent, recipients: list[str], alert_id: int, carrier_id
) -> list[Notification]:
    """One e-mail per staff address (already chosen by the trigger)."""
    config = trigger_config(organization.pk, intent.trigger)
    if not config.enabled or Channel.EMAIL not in config.channels:
        return []
    language = language_for(organization.default_language)
    context = {**branding(organization), "language": language, **intent.variables}
    created = []
    for raw in recipients:
        try:
            address, problem = normalize_email(raw), ""
        except InvalidAddress:
            address, problem = raw[:254], SuppressionReason.INVALID_ADDRESS
        message = _create(
            organization=organization,
            config=config,
            intent=intent,
            channel=Channel.EMAIL,
            audience=Audience.STAFF,
            address=address,
            problem=problem,
            language=language,
            context=context,
            key=dedup_key(
                subject=f"a{alert_id}",
                trigger=intent.trigger,
                occasion=intent.occasion,
                channel=Channel.EMAIL,
                address=address,
            ),
            alert_id=alert_id,
            carrier_id=carrier_id,
        )
        if message is not None:
            created.append(message)
    return created


def _create(
    *,
    organization,
    config,
    intent: Intent,
    channel: str,
    audience: str,
    address: str,
    problem: str,
    language: str,
    context: dict,
    key: str,
    shipment=None,
    alert_id=None,
    carrier_id=None,
) -> Notification | None:
    if Notification.objects.filter(dedup_key=key).exists():
        return None  # this occasion was handled already (the common case for ETA updates)
    now = timezone.now()
    send_after = intent.send_after or now
    # Useful for max_age_min after it happened (or after its scheduled time, for a message
    # sent later on purpose such as the feedback request).
    options = settings_for(organization)
    max_age_min = config.param("max_age_min")
    if options.max_age_min:
        max_age_min = min(max_age_min, options.max_age_min)
    expires_at = (intent.send_after or intent.occurred_at) + timedelta(minutes=max_age_min)
    if problem:
        status, reason = Status.SUPPRESSED, problem
    else:
        decision = admission(
            options,
            audience=audience,
            channel=channel,
            address=address,
            zone=organization_zone(organization),
            now=now,
            send_after=send_after,
            expires_at=expires_at,
        )
        status, reason = decision.status, decision.reason
        send_after = decision.send_after or send_after
    message = Notification(
        organization=organization,
        shipment=shipment,
        alert_id=alert_id,
        carrier_id=carrier_id,
        trigger=intent.trigger,
        channel=channel,
        audience=audience,
        address=address,
        language=language,
        dedup_key=key,
        source_event_id=intent.event_id,
        status=status,
        reason=reason,
        send_after=send_after,
        expires_at=expires_at,
        context=context,
        created_at=now,
    )
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        logger.info("notification %s already exists; not sent twice", key)
        return None
    detail = reason or ("until " + send_after.isoformat() if status == Status.HELD else "")
    log_status(message, status, detail)
    if status == Status.QUEUED:
        enqueue_on_commit(SEND_TASK, notification_id=message.pk, organization_id=organization.pk)
    return message
