"""Celery tasks (thin: the work is in notifications/services/)."""

from __future__ import annotations

from celery import shared_task

from control_tower.models import Organization
from control_tower.tenancy.scope import organization_scope
from notifications.services import delivery, dispatch


@shared_task(name="notifications.send", ignore_result=True)
def send(notification_id: int, organization_id: int) -> str:
    """Send one message if it is still due (idempotent: a claimed or finished one is skipped),
    with other due messages of its organization on the same SMTP session."""
    organization = Organization.objects.filter(pk=organization_id, is_active=True).first()
    if organization is None:
        return "skipped"
    with organization_scope(organization):
        return delivery.notification_send_with_due(notification_id=notification_id)


@shared_task(name="notifications.dispatch_due", ignore_result=True)
def dispatch_due() -> int:
    """Beat, every 5 s: held messages whose time came, retries, lost enqueues, expired leases."""
    return dispatch.dispatch_due()
