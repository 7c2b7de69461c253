"""Past days, quickly: what the hidden world makes of a day's routes, applied through the same
services the API uses at the times it happened, with the evidence the SLA scorecards read.

Per route, in one transaction, inside `backfill()` (so no alert, notification or webhook is
raised for last week): the route's phone scans its parcels out for delivery (`scans_record`;
some carriers' drivers skip a few), the route starts, at each stop the driver arrives and
either scans the parcel delivered and captures a proof of delivery (`pod_capture`: photo and
signature, or not, near the door or not, as the carrier's profile says) or scans the failed
attempt with its reason and fails the stop; the route completes. Then, in bulk: the phone's
fixes once a minute with the profile's GPS gaps (no last-position change), the ETA windows
customers were shown, and the ratings some of them gave (tracking/simulation/evidence.py).

Live days use the runner, over HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from io import BytesIO

from django.contrib.gis.geos import Point
from django.db import transaction
from django.db.models import Max, Prefetch

from carriers.models import Device
from control_tower.events import backfill
from control_tower.tenancy.scope import organization_scope
from tracking.ingest.auth import actor_for_device
from tracking.ingest.image_sanitizer import sanitize_image
from tracking.models import (
    OPEN_STOP_STATUSES,
    DeliveryRating,
    EtaRevision,
    Route,
    RouteStatus,
    ScanType,
    Shipment,
    Stop,
)
from tracking.services.proof_of_delivery import PodInput, pod_capture
from tracking.services.routes import route_complete, route_start
from tracking.services.scans import scans_record
from tracking.services.stops import stop_arrive, stop_complete, stop_fail
from tracking.simulation import evidence
from tracking.simulation.person_route import PERSON_PIN
from tracking.simulation.runner import _pod_images, build_timelines
from tracking.simulation.world import CarrierProfile, World

COUNTS = ("routes", "delivered", "failed", "scans", "pods", "pings", "etas", "ratings", "alerts")

# What higher layers record of a replayed route, registered from their apps' `ready()` (the
# exceptions app: the alerts it would have had, exceptions/history.py). Each is called as
# `recorder(organization=, route=, conditions=)` with the world's conditions of the route
# (docs/SIMULATION.md "Injected conditions"), inside the route's transaction and `backfill()`,
# and returns how many rows it wrote.
_recorders: list[Callable[..., int]] = []


def register_history_recorder(recorder: Callable[..., int]) -> None:
    if recorder not in _recorders:
        _recorders.append(recorder)


def replay_day(organization, day: date, world: World, *, start: datetime | None = None) -> dict:
    """Play a past day's remaining routes out as the world says. Returns counts. Routes that
    are already completed are left alone, so a second replay of the day adds nothing."""
    counts = dict.fromkeys(COUNTS, 0)
    with organization_scope(organization):
        routes = Route.objects.filter(date=day).order_by("planned_start")
        first = routes.values_list("planned_start", flat=True).first()
        if first is None:
            return counts
        timelines = build_timelines(organization, day, start or first, world, interval_s=60)
        if timelines:
            evidence.ensure_past_partitions(
                min(t.start for _r, _p, t in timelines), max(t.end for _r, _p, t in timelines)
            )
        devices = _devices()
        images = _clean_images()
        for route, _plans, timeline in timelines:
            device = devices.get(("driver", route.driver_id)) or devices.get(
                ("vehicle", route.vehicle_id)
            )
            _replay_route(world, organization, route, timeline, device, images, counts)
        # Routes already driven to their last stop (before the replay) only need closing.
        for route in Route.objects.filter(date=day, status=RouteStatus.IN_PROGRESS):
            if not route.stops.filter(status__in=OPEN_STOP_STATUSES).exists():
                last = route.stops.aggregate(last=Max("actual_departure"))["last"]
                with backfill():
                    route_complete(route=route, actor=None, at=last)
                counts["routes"] += 1
    return counts


def _devices() -> dict:
    """{("driver", id) | ("vehicle", id): device}: whose phone reports for a route."""
    found = {}
    for device in Device.objects.filter(revoked_at__isnull=True).select_related("organization"):
        if device.driver_id:
            found.setdefault(("driver", device.driver_id), device)
        if device.vehicle_id:
            found.setdefault(("vehicle", device.vehicle_id), device)
    return found


def _clean_images():
    """One door photo and one signature, cleaned once: every proof stores its own copy."""
    photo, signature = _pod_images("history")
    return sanitize_image(BytesIO(photo), kind="photo"), sanitize_image(
        BytesIO(signature), kind="signature"
    )


def _replay_route(
    world: World, organization, route, timeline, device, images, counts: dict
) -> None:
    profile = world.profile(route.carrier.code)
    # Whoever scans: the route's phone (carrier-bound, as over the API); without one, nobody
    # scans and the stops are recorded by the system.
    actor = actor_for_device(device) if device is not None else None
    stops = {
        stop.pk: stop
        for stop in Stop.objects.filter(route=route).prefetch_related(
            Prefetch("shipments", queryset=Shipment.objects.order_by("pk"))
        )
    }
    prefix = f"hist-{route.date:%Y%m%d}-{route.code}"
    with backfill(), transaction.atomic():
        if actor is not None:
            counts["scans"] += _scan(
                actor,
                [
                    (shipment, f"{prefix}-ofd-{shipment.pk}")
                    for truth in timeline.stops
                    for shipment in stops[truth.stop_id].shipments.all()
                    if world.rng("ofd-scan", shipment.pk).random()
                    >= profile.skip_out_for_delivery_scan
                ],
                ScanType.OUT_FOR_DELIVERY,
                timeline.start,
            )
        route_start(route=route, actor=None, at=timeline.start)
        for truth in timeline.stops:
            stop = stop_arrive(stop=stops[truth.stop_id], actor=None, at=truth.arrival)
            shipments = list(stops[truth.stop_id].shipments.all())
            tagged = [(s, f"{prefix}-{truth.outcome}-{s.pk}") for s in shipments]
            if truth.outcome == "delivered":
                if actor is not None:
                    at = truth.departure - timedelta(seconds=20)
                    counts["scans"] += _scan(actor, tagged, ScanType.DELIVERED, at)
                    counts["pods"] += _proofs(world, profile, actor, stop, shipments, truth, images)
                if actor is None or not shipments:
                    stop_complete(stop=stop, actor=None, at=truth.departure)
                counts["delivered"] += 1
            else:
                if actor is not None:
                    counts["scans"] += _scan(
                        actor, tagged, ScanType.ATTEMPT_FAILED, truth.departure, truth.reason
                    )
                stop_fail(
                    stop=stop,
                    reason=truth.reason,
                    actor=None,
                    at=truth.departure,
                    note="Simulated history",
                )
                counts["failed"] += 1
        route = route_complete(route=Route.objects.get(pk=route.pk), actor=None, at=timeline.end)
        for recorder in _recorders:
            counts["alerts"] += recorder(
                organization=organization, route=route, conditions=timeline.conditions
            )
    counts["routes"] += 1
    if device is not None:
        counts["pings"] += evidence.record_pings(world, organization, device, timeline)
    revisions = evidence.eta_revisions(world, organization, profile, timeline)
    EtaRevision.objects.bulk_create(revisions, batch_size=1000)
    counts["etas"] += len(revisions)
    rated = evidence.ratings(world, organization, profile, route, timeline, stops)
    DeliveryRating.objects.bulk_create(rated, batch_size=1000, ignore_conflicts=True)
    counts["ratings"] += len(rated)


def _scan(actor, tagged, scan_type: str, at: datetime, reason: str = "") -> int:
    """Scan the parcels (shipment, event id) in one batch, as the phone would."""
    if not tagged:
        return 0
    items = [
        {
            "barcode": shipment.barcode,
            "scan_type": scan_type,
            "occurred_at": at,
            "event_id": event_id[:64],
            "reason_code": reason,
        }
        for shipment, event_id in tagged
    ]
    scans_record(actor=actor, items=items)
    return len(items)


def _proofs(world: World, profile: CarrierProfile, actor, stop, shipments, truth, images) -> int:
    """A proof of delivery per parcel: the photo or the signature missing, or captured far
    from the door (from the kerb, from the van), as often as the carrier's profile says."""
    photo, signature = images
    for shipment in shipments:
        rng = world.rng("pod", shipment.pk)
        # At the door, a few metres off; from the kerb or the van when the profile says so.
        far = rng.random() < profile.pod_far
        metres = rng.uniform(200, 700) if far else abs(rng.gauss(0, world.config.gps_noise_m))
        location = _moved(stop.location, metres, rng.uniform(0, 360))
        pod_capture(
            actor=actor,
            shipment=shipment,
            data=PodInput(
                idempotency_key=f"hist-{stop.route_id}-{shipment.pk}",
                captured_at=truth.departure,
                recipient_name=shipment.recipient_name,
                location=location,
                stop=stop,
                # The demo's PIN parcels (a person's route nobody worked, played out later).
                pin=PERSON_PIN if shipment.delivery_pin_hash else None,
            ),
            photos=[] if rng.random() < profile.pod_photo_missing else [photo],
            signature=None if rng.random() < profile.pod_signature_missing else signature,
        )
    return len(shipments)


def _moved(point: Point, metres: float, bearing_deg: float) -> Point:
    bearing = math.radians(bearing_deg)
    lat = point.y + metres * math.cos(bearing) / 111_320
    lon = point.x + metres * math.sin(bearing) / (111_320 * math.cos(math.radians(point.y)))
    return Point(lon, lat, srid=4326)
