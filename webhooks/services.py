"""Writes on webhook subscriptions, deliveries and settings (docs/WEBHOOKS.md). Views, the
admin and commands call these; the rules (event types, URLs, carrier binding, secrets) are
here once."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from carriers.models import Carrier
from control_tower.errors import DomainError
from control_tower.events import EVENT_TYPES, make_event
from control_tower.events.catalog import RESERVED_NAMESPACES
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.carrier_scope import visible_to
from webhooks import conf
from webhooks.fanout import delivery_for, dispatch_on_commit
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookSettings
from webhooks.safety import check_allow_list, check_literal_destination, parse_url
from webhooks.secrets import encrypt, new_secret

TEST_EVENT = "webhook.test"


def _invalid(field: str, message: str) -> DomainError:
    return DomainError(message, fields={field: [message]}, code="validation_error")


def check_event_types(patterns: list[str]) -> list[str]:
    """Patterns that name durable catalog types: an exact name, a namespace (`alert.*`) or
    `*`. Live-only types (`vehicle.moved`) are refused: they never reach the outbox."""
    if not patterns:
        raise _invalid("event_types", 'Name at least one event type (or "*").')
    cleaned = []
    for pattern in patterns:
        pattern = str(pattern).strip()
        if pattern == "*":
            pass
        elif pattern.endswith(".*"):
            namespace = pattern[:-1]
            known = [t for t in EVENT_TYPES.values() if t.name.startswith(namespace)]
            if not any(t.durable for t in known) and namespace not in RESERVED_NAMESPACES:
                raise _invalid("event_types", f"No durable event type in {pattern!r}.")
        elif pattern not in EVENT_TYPES:
            raise _invalid("event_types", f"Unknown event type {pattern!r}.")
        elif not EVENT_TYPES[pattern].durable:
            raise _invalid(
                "event_types",
                f"{pattern!r} is live only (too frequent for the outbox): it is not sent to "
                "webhooks. Read positions from the API instead.",
            )
        if pattern not in cleaned:
            cleaned.append(pattern)
    return cleaned


def _carrier_for(actor: Actor, carrier_id: int | None) -> int | None:
    """A carrier-bound actor's endpoints are bound to its carrier, whatever was asked."""
    if actor.carrier_id is not None:
        return actor.carrier_id
    if carrier_id is None:
        return None
    if not visible_to(actor, Carrier).filter(pk=carrier_id).exists():
        raise _invalid("carrier", f"Unknown carrier {carrier_id}.")
    return carrier_id


def _check_url(url: str) -> None:
    check_literal_destination(parse_url(url), settings_for_organization().allowed_private_hosts)


def endpoint_create(
    *,
    actor: Actor,
    name: str,
    url: str,
    event_types: list[str],
    carrier_id: int | None = None,
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new subscription and its secret (returned once, stored encrypted)."""
    _check_url(url)
    raw = new_secret()
    endpoint = WebhookEndpoint(
        name=name,
        url=url.strip(),
        event_types=check_event_types(event_types),
        carrier_id=_carrier_for(actor, carrier_id),
        enabled=enabled,
        disabled_at=None if enabled else timezone.now(),
        disabled_reason="" if enabled else "Created disabled.",
        secret_encrypted=encrypt(raw),
        created_by=actor.user,
    )
    endpoint.save()
    return endpoint, raw


def endpoint_update(*, actor: Actor, endpoint: WebhookEndpoint, **fields) -> WebhookEndpoint:
    """Change name, url, event types, carrier or enabled. Enabling resets the failure streak."""
    if "url" in fields:
        _check_url(fields["url"])
        endpoint.url = fields["url"].strip()
    if "name" in fields:
        endpoint.name = fields["name"]
    if "event_types" in fields:
        endpoint.event_types = check_event_types(fields["event_types"])
    if "carrier_id" in fields:
        endpoint.carrier_id = _carrier_for(actor, fields["carrier_id"])
    if "enabled" in fields and fields["enabled"] != endpoint.enabled:
        _set_enabled(endpoint, fields["enabled"], reason="Disabled by a person.")
    endpoint.save()
    return endpoint


def _set_enabled(endpoint: WebhookEndpoint, enabled: bool, *, reason: str) -> None:
    endpoint.enabled = enabled
    if enabled:
        endpoint.disabled_at = None
        endpoint.disabled_reason = ""
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
    else:
        endpoint.disabled_at = timezone.now()
        endpoint.disabled_reason = reason


def endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Enable (again): counters reset; pending deliveries go out on the next dispatcher run."""
    _set_enabled(endpoint, True, reason="")
    endpoint.save()
    dispatch_on_commit()
    return endpoint


def endpoint_disable(*, endpoint: WebhookEndpoint, reason: str) -> WebhookEndpoint:
    _set_enabled(endpoint, False, reason=reason)
    endpoint.save()
    return endpoint


def endpoint_rotate_secret(
    *, endpoint: WebhookEndpoint, overlap_hours: float | None = None
) -> tuple[WebhookEndpoint, str]:
    """A new secret (returned once). The old one keeps signing next to it for `overlap_hours`
    (0: replaced at once), so receivers can switch without losing a message."""
    if overlap_hours is None:
        overlap_hours = conf.get("WEBHOOKS_ROTATION_OVERLAP_H")
    if overlap_hours < 0 or overlap_hours > 24 * 30:
        raise _invalid("overlap_hours", "Between 0 and 720 hours.")
    raw = new_secret()
    if overlap_hours > 0:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_secret_until = timezone.now() + timedelta(hours=overlap_hours)
    else:
        endpoint.previous_secret_encrypted = ""
        endpoint.previous_secret_until = None
    endpoint.secret_encrypted = encrypt(raw)
    endpoint.save()
    return endpoint, raw


def endpoint_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` ping to this endpoint only, sent by the next dispatcher run (queued
    now). Works on a disabled endpoint only once it is enabled."""
    event = make_event(
        TEST_EVENT,
        organization_id=endpoint.organization_id,
        carrier_id=endpoint.carrier_id,
        aggregate_id=endpoint.pk,
        payload={"endpoint": endpoint.pk, "name": endpoint.name, "at": timezone.now()},
    )
    with transaction.atomic():
        delivery = delivery_for(endpoint.pk, event)
        delivery.save()
        dispatch_on_commit()
    return delivery


def _replay(delivery: WebhookDelivery, seq: int) -> WebhookDelivery:
    return WebhookDelivery(
        organization_id=delivery.organization_id,
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        payload=delivery.payload,
        ordering_key=delivery.ordering_key,
        message_id=delivery.message_id,  # the same message: a receiver may deduplicate
        seq=seq,
        replay_of=delivery,
    )


def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send one delivery's event again, as a new delivery (same `webhook-id`)."""
    with transaction.atomic():
        WebhookEndpoint.objects.select_for_update().filter(pk=delivery.endpoint_id).first()
        last = WebhookDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id, event_id=delivery.event_id
        ).aggregate(seq=Max("seq"))["seq"]
        replay = _replay(delivery, (last or 0) + 1)
        replay.save()
        dispatch_on_commit()
    return replay


def endpoint_replay_since(*, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Replay every event sent to `endpoint` since `since` (the original deliveries, in their
    order). Returns how many deliveries were queued."""
    with transaction.atomic():
        WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
        originals = list(
            WebhookDelivery.objects.filter(endpoint=endpoint, seq=0, created_at__gte=since)
            .exclude(event_type=TEST_EVENT)
            .order_by("id")
        )
        last_seq = dict(
            WebhookDelivery.objects.filter(
                endpoint=endpoint, event_id__in=[d.event_id for d in originals]
            )
            .values("event_id")
            .annotate(seq=Max("seq"))
            .values_list("event_id", "seq")
        )
        replays = [_replay(d, last_seq.get(d.event_id, 0) + 1) for d in originals]
        WebhookDelivery.objects.bulk_create(replays)
        if replays:
            dispatch_on_commit()
    return len(replays)


def settings_for_organization() -> WebhookSettings:
    """The organization's webhook settings (created empty on first use)."""
    found = WebhookSettings.objects.first()
    if found is None:
        found = WebhookSettings(allowed_private_hosts=[])
        found.save()
    return found


def settings_update(*, allowed_private_hosts: list[str]) -> WebhookSettings:
    found = settings_for_organization()
    found.allowed_private_hosts = check_allow_list(allowed_private_hosts)
    found.save()
    return found
