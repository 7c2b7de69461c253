"""The notice an organization's owners and admins get when one of its endpoints is disabled.
Plain `send_mail` (the notifications app is for customers and is separate from this one)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

from control_tower.models import Membership
from control_tower.tenancy.roles import ADMIN_ROLES
from control_tower.tenancy.scope import organization_scope

logger = logging.getLogger(__name__)


def endpoint_disabled(endpoint) -> None:
    """E-mail the organization's owners and admins that `endpoint` was disabled, and log it.
    A mail failure is logged, never raised: the endpoint stays disabled either way."""
    logger.warning(
        "webhook endpoint %s (%s) of organization %s disabled: %s",
        endpoint.pk,
        endpoint.url,
        endpoint.organization_id,
        endpoint.disabled_reason,
    )
    with organization_scope(endpoint.organization):
        recipients = sorted(
            {
                email
                for email in Membership.objects.filter(role__in=ADMIN_ROLES).values_list(
                    "user__email", flat=True
                )
                if email
            }
        )
    if not recipients:
        return
    subject = f"Webhook endpoint disabled: {endpoint.name}"
    body = (
        f"The webhook endpoint {endpoint.name!r} ({endpoint.url}) of "
        f"{endpoint.organization.name} was disabled.\n\n"
        f"Reason: {endpoint.disabled_reason}\n\n"
        "Its pending deliveries are kept. Fix the receiver, then enable the endpoint again "
        '(API: POST /api/v1/webhook-endpoints/{id}/enable/, or the admin\'s "Enable" action); '
        "the deliveries that died meanwhile can be replayed.\n"
    ).replace("{id}", str(endpoint.pk))
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:  # noqa: BLE001
        logger.exception("could not e-mail the notice for webhook endpoint %s", endpoint.pk)
