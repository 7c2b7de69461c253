"""Alert events → the customer hears about exceptions that matter to them; staff hear about
escalated alerts."""

from __future__ import annotations

from django.conf import settings

from control_tower.models import Membership, Organization
from control_tower.tenancy.roles import Role
from notifications.models import Trigger
from notifications.services.messages import (
    Intent,
    notify_customer,
    notify_staff,
    shipment_language,
)
from notifications.triggers.common import shipment_of

# Alert kinds a recipient is told about: their parcel will be late. A failed attempt is told
# once, by the `attempt_failed` trigger (with the reason and the next step), not again by its
# alert. Stalled vehicles, lost signals, batteries … are the operation's business, not theirs.
CUSTOMER_ALERT_KINDS = {"predicted_late"}
CUSTOMER_ALERT_TEXT = {
    "es": {"predicted_late": "podría llegar más tarde de lo prometido"},
    "en": {"predicted_late": "it may arrive later than promised"},
}
STAFF_ROLES = (Role.OWNER, Role.ADMIN, Role.DISPATCHER)


def on_alert_raised(event) -> None:
    alert = event.payload
    if alert.get("kind") not in CUSTOMER_ALERT_KINDS or not alert.get("shipment"):
        return
    shipment = shipment_of(alert["shipment"])
    if shipment is None:
        return
    reason = CUSTOMER_ALERT_TEXT[shipment_language(shipment)][alert["kind"]]
    intent = Intent(
        trigger=Trigger.EXCEPTION_RAISED,
        occasion=f"alert{alert['id']}",
        occurred_at=event.occurred_at,
        event_id=event.id,
        variables={"reason": reason},
    )
    notify_customer(shipment=shipment, intent=intent)


def staff_recipients(organization_id: int, carrier_id: int | None) -> list[str]:
    """E-mails of the owners, admins and dispatchers, and for a carrier's alert the carrier's
    own users, who are active and have an address."""
    members = Membership.objects.filter(organization_id=organization_id).select_related("user")
    chosen = []
    for member in members:
        user = member.user
        if not user.is_active or not user.email:
            continue
        if member.role in STAFF_ROLES or (
            carrier_id is not None
            and member.role == Role.CARRIER_USER
            and member.carrier_id == carrier_id
        ):
            chosen.append(user.email)
    return sorted(set(chosen))


def on_alert_escalated(event) -> None:
    alert = event.payload
    organization = Organization.objects.get(pk=event.organization_id)
    base = settings.PUBLIC_BASE_URL
    intent = Intent(
        trigger=Trigger.STAFF_ALERT_ESCALATED,
        occasion=f"level{alert.get('escalation_level', 0)}",
        occurred_at=event.occurred_at,
        event_id=event.id,
        variables={
            "alert_title": alert.get("title", ""),
            "severity": alert.get("severity", ""),
            "alert_url": f"{base}/console/?alert={alert['id']}",
        },
    )
    notify_staff(
        organization=organization,
        intent=intent,
        recipients=staff_recipients(organization.pk, alert.get("carrier")),
        alert_id=alert["id"],
        carrier_id=alert.get("carrier"),
    )
