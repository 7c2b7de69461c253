"""Fixtures for the webhook tests: a real receiver (HTTP server in a thread that verifies with
the reference `standardwebhooks` code), endpoints, events through the real outbox, and a pump
that runs the relay and the dispatcher in this process."""

from __future__ import annotations

import time
import uuid

import pytest
from django.db import transaction
from django.utils import timezone

from control_tower.events import emit, make_event
from control_tower.events.relay import relay_pending
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from webhooks import dispatch, services
from webhooks.models import WebhookDelivery
from webhooks.receiver import Receiver


@pytest.fixture(autouse=True)
def _fast_webhooks(settings):
    settings.WEBHOOKS_RETRY_BASE_S = 0.05
    settings.WEBHOOKS_RETRY_MAX_S = 0.2
    settings.WEBHOOKS_TIMEOUT_S = 2.0
    settings.WEBHOOKS_ENDPOINT_CACHE_S = 0.0
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def receivers():
    """`receivers(secret=...)` → a started Receiver (stopped after the test)."""
    started: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        receiver = Receiver(**kwargs).start()
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


def owner_of(tenant):
    return actor_for_membership(tenant.members[Role.OWNER])


def allow_localhost(tenant, hosts=("127.0.0.1",)):
    with organization_scope(tenant.organization):
        services.settings_update(allowed_private_hosts=list(hosts))


def make_endpoint(tenant, url, *, event_types=("*",), carrier_id=None, actor=None, allow=True):
    """(endpoint, raw secret) of a new subscription of `tenant` (localhost allowed)."""
    if allow:
        allow_localhost(tenant)
    with organization_scope(tenant.organization):
        return services.endpoint_create(
            actor=actor or owner_of(tenant),
            name="Integrator",
            url=url,
            event_types=list(event_types),
            carrier_id=carrier_id,
        )


def emit_status(tenant, *, shipment_id, status, carrier_id=None, backfill=False):
    """A real `shipment.status_changed` outbox row (committed with the test's transaction)."""
    from control_tower.events import backfill as backfill_context

    event = make_event(
        "shipment.status_changed",
        organization_id=tenant.organization.pk,
        carrier_id=carrier_id,
        aggregate_id=shipment_id,
        payload={
            "id": shipment_id,
            "reference": f"REF-{shipment_id}",
            "status": status,
            "from": "out_for_delivery",
            "at": timezone.now(),
        },
    )
    with transaction.atomic():
        if backfill:
            with backfill_context():
                emit(event)
        else:
            emit(event)
    return event


def pump(until=None, *, timeout: float = 10.0):
    """Run the relay and the dispatcher until `until()` is truthy (or once without it)."""
    deadline = time.monotonic() + timeout
    while True:
        relay_pending(budget_s=5)
        dispatch.dispatch_due(budget_s=5)
        if until is None or until():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met while pumping")
        time.sleep(0.02)


def deliveries(**filters):
    with dangerously_all_organizations():
        return list(WebhookDelivery.dangerously_unscoped.filter(**filters).order_by("id"))


def new_id() -> int:
    return uuid.uuid4().int % 10_000_000
