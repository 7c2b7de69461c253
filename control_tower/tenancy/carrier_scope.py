"""The carrier scope: which rows a carrier-bound or driver actor may see, declared once.

The organization scope is the managers' job (`tenancy/scope.py`). On top of it, a carrier user,
a carrier-bound API key or a device sees only its own carrier's rows, and a person with the
driver role only their own routes. How each model reaches a carrier (and a driver) is declared
here, once, by lookup path; `visible_to(actor, rows)` applies it. Every read or write that
serves an actor goes through it: the base viewset, serializer foreign keys, bulk id resolution,
route planning, scans, proofs, the console.

Fail-closed: a restricted actor sees nothing of a model that has no declared path, unless the
model is declared `SHARED` (hubs serve every carrier of the organization).
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from django.db.models import Model, Q, QuerySet

from control_tower.tenancy.roles import Role

if TYPE_CHECKING:
    from control_tower.tenancy.actors import Actor

SHARED = "shared"

# `app_label.Model` -> lookup path(s) from the model to the carrier's primary key. A tuple
# means "any of these": a scan belongs to a carrier through its shipment, or through the
# device or key that made it (an unknown barcode has no shipment).
CARRIER_PATHS: dict[str, str | tuple[str, ...]] = {
    "carriers.Carrier": "pk",
    "carriers.Driver": "carrier",
    "carriers.Vehicle": "carrier",
    "carriers.Device": "carrier",
    "tracking.Hub": SHARED,
    "tracking.Shipment": "carrier",
    "tracking.ShipmentEvent": "shipment__carrier",
    "tracking.CustodyEntry": "shipment__carrier",
    "tracking.Route": "carrier",
    "tracking.Stop": "route__carrier",
    "tracking.StopShipment": "stop__route__carrier",
    "tracking.EtaRevision": "stop__route__carrier",
    "tracking.ProofOfDelivery": "shipment__carrier",
    "tracking.PodFile": "pod__shipment__carrier",
    "tracking.TrackingLink": "shipment__carrier",
    "tracking.CustomerAction": "shipment__carrier",
    # Who delivered (copied at rating time), as the SLA reports group it.
    "tracking.DeliveryRating": "carrier",
    "tracking.Ping": "device__carrier",
    "tracking.DevicePosition": "device__carrier",
    "tracking.Scan": ("shipment__carrier", "device__carrier", "api_key__carrier"),
    "exceptions.Alert": "carrier",
    "exceptions.AlertTransition": "alert__carrier",
    "notifications.Notification": "carrier",
    "notifications.NotificationLog": "notification__carrier",
    # A carrier's own webhook endpoints (and their deliveries); null carrier: the
    # organization's.
    "webhooks.WebhookEndpoint": "carrier",
    "webhooks.WebhookDelivery": "endpoint__carrier",
    "webhooks.WebhookAttempt": "delivery__endpoint__carrier",
    # SLA facts and roll-ups carry the carrier that performed the work (carriers/sla).
    "sla.AttemptFact": "carrier",
    "sla.DeliveryFact": "carrier",
    "sla.StopFact": "carrier",
    "sla.RouteFact": "carrier",
    "sla.AlertFact": "carrier",
    "sla.DailyRollup": "carrier",
    "sla.RollupCount": "carrier",
    # Carrier feeds: each feed, event and file import belongs to one carrier.
    "carrier_feeds.CarrierFeed": "carrier",
    "carrier_feeds.InboundCarrierEvent": "carrier",
    "carrier_feeds.FeedImport": "carrier",
}

# Tenant models that carry no carrier: organization-wide data that carrier-bound actors and
# drivers never see through `visible_to` (people, keys, learned ETA models). Listed so that a
# new tenant model is a decision (a path, SHARED, or here), checked by a test.
ORGANIZATION_ONLY: frozenset[str] = frozenset(
    {
        "control_tower.Membership",
        "control_tower.ApiKey",
        "control_tower.Invitation",
        # System infrastructure read by the relay only; consumers narrow by its carrier_id.
        "control_tower.OutboxEvent",
        "tracking.EtaModel",
        "tracking.EtaCalibration",
        # Rule thresholds are the organization's policy (admin only), even a carrier's override.
        "exceptions.AlertThresholds",
        # Notification policy and recipients' consent records are the organization's.
        "notifications.NotificationSettings",
        "notifications.TriggerSetting",
        "notifications.NotificationTemplate",
        "notifications.ContactPreference",
        # Which private addresses webhooks may reach: the organization's security policy.
        "webhooks.WebhookSettings",
        # Who gets the weekly scorecard is the organization's choice (each recipient's copy is
        # narrowed to what they may see when it is rendered).
        "sla.ScorecardEmail",
        # Which days' SLA facts are stale: bookkeeping of the roll-up job.
        "sla.DirtyDay",
    }
)

# `app_label.Model` -> lookup path to the driver's primary key, for people with the driver
# role: they read their own routes and the hubs, nothing else.
DRIVER_PATHS: dict[str, str] = {
    "tracking.Hub": SHARED,
    "tracking.Route": "driver",
    "tracking.Stop": "route__driver",
}


def _label(model: type[Model]) -> str:
    return model._meta.label


def carrier_path(model: type[Model]) -> str | tuple[str, ...] | None:
    """The declared path of `model` to its carrier, `SHARED`, or None (nothing declared)."""
    return CARRIER_PATHS.get(_label(model))


def _is_driver(actor: Actor) -> bool:
    return actor.role == Role.DRIVER and actor.api_key is None and actor.device is None


def _driver_narrowing(actor: Actor, label: str) -> str | None:
    """The driver path to apply for `actor` on model `label`, `SHARED`, or None.

    A person with the driver role is narrowed on every model (what has no driver path is
    hidden). A device bound to a driver (their phone) keeps its carrier's reach for what it
    reports (a parcel scanned at the hub may be on any route) but reads and works only its
    driver's routes and stops."""
    if _is_driver(actor):
        return DRIVER_PATHS.get(label)
    if actor.device is not None and actor.driver_id is not None and label in DRIVER_PATHS:
        return DRIVER_PATHS[label]
    return SHARED


def _paths(path: str | tuple[str, ...]) -> tuple[str, ...]:
    return path if isinstance(path, tuple) else (path,)


def visible_to(actor: Actor | None, rows: type[Model] | QuerySet) -> QuerySet:
    """`rows` (a tenant model or a queryset of one) narrowed to what `actor` may see.

    The organization filter comes from the model's scoped manager; this adds the carrier and
    the driver narrowing. `None` stands for the system (commands, jobs): no narrowing.
    """
    queryset = rows.objects.all() if isinstance(rows, type) else rows
    if actor is None:
        return queryset
    label = _label(queryset.model)
    if actor.carrier_id is not None:
        path = CARRIER_PATHS.get(label)
        if path is None:
            return queryset.none()
        if path != SHARED:
            queryset = queryset.filter(
                reduce(or_, (Q(**{p: actor.carrier_id}) for p in _paths(path)))
            )
    path = _driver_narrowing(actor, label)
    if path == SHARED:
        return queryset
    if path is None or actor.driver_id is None:
        # A driver with no driver record sees only what is shared.
        return queryset.none()
    return queryset.filter(**{path: actor.driver_id})


def _follow(obj: Model, path: str):
    """The primary key at the end of `path` from `obj`, reading `<field>_id` for the last step
    so an already loaded row costs no query."""
    if path == "pk":
        return obj.pk
    *steps, last = path.split("__")
    for step in steps:
        obj = getattr(obj, step)
        if obj is None:
            return None
    return obj.pk if last == "pk" else getattr(obj, f"{last}_id")


def is_visible(actor: Actor | None, obj: Model | None) -> bool:
    """Whether `actor` may see the loaded row `obj` (the same rule as `visible_to`, in Python,
    for services that already hold the row)."""
    if obj is None:
        return False
    if actor is None:
        return True
    label = _label(type(obj))
    if actor.carrier_id is not None:
        path = CARRIER_PATHS.get(label)
        if path is None:
            return False
        if path != SHARED and not any(_follow(obj, p) == actor.carrier_id for p in _paths(path)):
            return False
    path = _driver_narrowing(actor, label)
    if path == SHARED:
        return True
    return (
        path is not None and actor.driver_id is not None and _follow(obj, path) == actor.driver_id
    )
