"""Fixtures and helpers of the notification tests (imported by the test modules)."""

from __future__ import annotations

import json
from datetime import time
from pathlib import Path

import pytest

from control_tower.events import relay
from control_tower.tenancy.actors import actor_for_membership
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from notifications.models import Notification
from notifications.policy import settings_for
from tracking.services.shipments import shipment_create

PHONE = "+56 9 8765 4321"
PHONE_E164 = "+56987654321"
EMAIL = "ana@Example.COM"
EMAIL_NORMALIZED = "ana@example.com"


def no_quiet_hours(organization) -> None:
    """Quiet hours off (start == end): tests must not depend on the time they run at."""
    options = settings_for(organization)
    options.quiet_hours_start = options.quiet_hours_end = time(0, 0)
    options.save()


@pytest.fixture
def sms_file(settings, tmp_path) -> Path:
    """The console SMS backend writes JSON lines here."""
    from notifications.channels.registry import reset_backends

    path = tmp_path / "sms.jsonl"
    settings.NOTIFICATIONS_SMS_BACKEND = "notifications.channels.console.ConsoleSmsBackend"
    settings.NOTIFICATIONS_SMS_FILE = str(path)
    settings.NOTIFICATIONS_SMS_CONSOLE_SECRET = "console-secret"
    reset_backends()
    return path


def sms_sent(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def notify_tenant(tenant):
    """The tenant with quiet hours off."""
    no_quiet_hours(tenant.organization)
    return tenant


def owner_actor(tenant):
    return actor_for_membership(tenant.members[Role.OWNER])


def create_shipment(tenant, **fields):
    """A shipment created through the service (so `shipment.created` is emitted)."""
    data = {
        "reference": fields.pop("reference", "ORD-1"),
        "barcode": fields.pop("barcode", "BC-1"),
        "recipient_name": "Ana Pérez",
        "recipient_phone": PHONE,
        "recipient_email": EMAIL,
        "address_line1": "Avenida del Mar 1",
        "city": "La Serena",
        "country_code": "CL",
        "carrier": tenant.carrier,
        **fields,
    }
    with organization_scope(tenant.organization):
        return shipment_create(actor=owner_actor(tenant), data=data)


def relay_now() -> int:
    """Deliver the pending outbox rows in this process (what the Celery relay task does)."""
    return relay.relay_pending(budget_s=10)


def messages_of(organization, **filters) -> list[Notification]:
    with organization_scope(organization):
        return list(Notification.objects.filter(**filters).order_by("id"))


def planned_stop_for(tenant, shipment, *, sequence: int = 1):
    """A planned route of the tenant's carrier with one stop carrying `shipment`."""
    from tests.factories import DriverFactory, RouteFactory, StopFactory
    from tracking.models import StopShipment

    organization = tenant.organization
    with organization_scope(organization):
        driver = DriverFactory(organization=organization, carrier=tenant.carrier, name="Pedro Soto")
        route = RouteFactory(organization=organization, carrier=tenant.carrier, driver=driver)
        stop = StopFactory(organization=organization, route=route, sequence=sequence)
        StopShipment.objects.create(organization=organization, stop=stop, shipment=shipment)
    return route, stop


def send_due(organization) -> list[str]:
    """Send every queued message of the organization now (what the send task does)."""
    from notifications.models import Status
    from notifications.services.delivery import notification_send

    with organization_scope(organization):
        ids = list(Notification.objects.filter(status=Status.QUEUED).values_list("pk", flat=True))
        return [notification_send(notification_id=pk) for pk in ids]
