"""Stop life cycle: arrive, complete, fail, skip. Each keeps the shipments' status in step."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from control_tower.errors import IllegalTransition
from control_tower.events import catalog, emit
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.enqueue import enqueue_on_commit
from tracking.errors import InvalidInput
from tracking.eta.triggers import ETA_UPDATE_ROUTE
from tracking.models import (
    CLOSED_ROUTE_STATUSES,
    FailureReason,
    Route,
    RouteStatus,
    Stop,
    StopKind,
    StopStatus,
)
from tracking.models import ShipmentStatus as S
from tracking.services.routes import route_start
from tracking.services.shipments import SHIPMENT_TRANSITIONS, shipment_transition

STOP_TRANSITIONS = {
    StopStatus.PENDING: frozenset(
        {
            StopStatus.ARRIVED,
            StopStatus.COMPLETED,
            StopStatus.FAILED,
            StopStatus.SKIPPED,
            StopStatus.CANCELLED,
        }
    ),
    StopStatus.ARRIVED: frozenset({StopStatus.COMPLETED, StopStatus.FAILED}),
    StopStatus.COMPLETED: frozenset(),
    StopStatus.FAILED: frozenset(),
    StopStatus.SKIPPED: frozenset(),
    StopStatus.CANCELLED: frozenset(),
}


def emit_stop_status(stop: Stop) -> None:
    """`stop.status_changed` (also emitted by reassignments: the route or sequence moved)."""
    emit(catalog.stop_status_changed(stop, carrier_id=stop.route.carrier_id))


def _announce(stop: Stop) -> None:
    # The route's remaining ETAs change with every stop event: recompute right after commit.
    enqueue_on_commit(
        ETA_UPDATE_ROUTE, organization_id=stop.organization_id, route_id=stop.route_id
    )
    emit_stop_status(stop)
    # The route's progress and lateness in the console's list move with each stop event.
    emit(catalog.route_changed(stop.route, reason="stops"))


def _lock(stop: Stop) -> Stop:
    """The stop's route, then the stop: the order reassigning takes them in
    (tracking/services/reassign.py), so a stop event and a reassignment never deadlock. If the
    stop moved to another route in between, lock that one instead."""
    route_id = stop.route_id
    for _ in range(3):
        Route.objects.select_for_update(of=("self",)).filter(pk=route_id).first()
        locked = (
            Stop.objects.select_for_update(of=("self",)).select_related("route").get(pk=stop.pk)
        )
        if locked.route_id == route_id:
            return locked
        route_id = locked.route_id
    return locked


def _move(stop: Stop, to_status: str) -> bool:
    if stop.status == to_status:
        return False
    if to_status not in STOP_TRANSITIONS[stop.status]:
        raise IllegalTransition(
            f"A {stop.get_status_display().lower()} stop cannot become "
            f"{StopStatus(to_status).label.lower()}."
        )
    if stop.route.status in CLOSED_ROUTE_STATUSES:
        raise IllegalTransition(f"Route {stop.route.code} is {stop.route.status}.")
    return True


def _ensure_route_started(stop: Stop, actor: Actor | None, at: datetime) -> None:
    # Drivers often forget to press "start": the first stop event starts the route.
    if stop.route.status == RouteStatus.PLANNED:
        route_start(route=stop.route, actor=actor, at=at)


def _move_shipments(stop: Stop, to_status: str, actor: Actor | None, at: datetime, note: str):
    for shipment in stop.shipments.all():
        if to_status in SHIPMENT_TRANSITIONS[shipment.status]:
            shipment_transition(
                shipment=shipment,
                to_status=to_status,
                actor=actor,
                at=at,
                source="stop",
                note=note,
            )


@transaction.atomic
def stop_arrive(*, stop: Stop, actor: Actor | None, at: datetime | None = None) -> Stop:
    """Pending → arrived (records the actual arrival). Starts a planned route."""
    at = at or timezone.now()
    stop = _lock(stop)
    if not _move(stop, StopStatus.ARRIVED):
        return stop
    _ensure_route_started(stop, actor, at)
    stop.status = StopStatus.ARRIVED
    stop.actual_arrival = at
    stop.save(update_fields=["status", "actual_arrival", "updated_at"])
    _announce(stop)
    return stop


@transaction.atomic
def stop_complete(*, stop: Stop, actor: Actor | None, at: datetime | None = None) -> Stop:
    """Pending/arrived → completed; a delivery stop's shipments become delivered."""
    at = at or timezone.now()
    stop = _lock(stop)
    if not _move(stop, StopStatus.COMPLETED):
        return stop
    _ensure_route_started(stop, actor, at)
    stop.status = StopStatus.COMPLETED
    stop.actual_arrival = stop.actual_arrival or at
    stop.actual_departure = max(at, stop.actual_arrival)
    stop.save(update_fields=["status", "actual_arrival", "actual_departure", "updated_at"])
    _announce(stop)
    if stop.kind == StopKind.DELIVERY:
        _move_shipments(stop, S.DELIVERED, actor, at, f"Stop {stop.route.code} #{stop.sequence}")
    return stop


@transaction.atomic
def stop_fail(
    *, stop: Stop, reason: str, actor: Actor | None, at: datetime | None = None, note: str = ""
) -> Stop:
    """Pending/arrived → failed attempt with a reason; shipments become 'attempt failed'."""
    if reason not in FailureReason.values:
        raise InvalidInput(
            "Unknown failure reason.",
            fields={"reason": [f"Choose one of: {', '.join(FailureReason.values)}."]},
        )
    at = at or timezone.now()
    stop = _lock(stop)
    if not _move(stop, StopStatus.FAILED):
        return stop
    _ensure_route_started(stop, actor, at)
    stop.status = StopStatus.FAILED
    stop.failure_reason = reason
    stop.actual_arrival = stop.actual_arrival or at
    stop.actual_departure = max(at, stop.actual_arrival)
    if note:
        stop.notes = note[:500]
    stop.save(
        update_fields=[
            "status",
            "failure_reason",
            "actual_arrival",
            "actual_departure",
            "notes",
            "updated_at",
        ]
    )
    _announce(stop)
    _move_shipments(stop, S.ATTEMPT_FAILED, actor, at, FailureReason(reason).label)
    return stop


@transaction.atomic
def stop_skip(*, stop: Stop, actor: Actor | None, note: str = "", reason: str = "") -> Stop:
    """A pending stop will not be visited on this route (a dispatcher's decision, or the
    driver's from the road), optionally with a reason from the failure taxonomy."""
    if reason and reason not in FailureReason.values:
        raise InvalidInput(
            "Unknown skip reason.",
            fields={"reason": [f"Choose one of: {', '.join(FailureReason.values)}."]},
        )
    stop = _lock(stop)
    if not _move(stop, StopStatus.SKIPPED):
        return stop
    stop.status = StopStatus.SKIPPED
    if note:
        stop.notes = note[:500]
    if reason:
        stop.failure_reason = reason
    stop.save(update_fields=["status", "notes", "failure_reason", "updated_at"])
    _announce(stop)
    return stop
