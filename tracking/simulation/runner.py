"""Plays an organization's routes of a day out over HTTP, as the phones would.

Each route's vehicle reports through the public endpoints with the protocol of its device:
a driver app posts native batches, Traccar Client uses OsmAnd query strings, OwnTracks posts
JSON with Basic auth (trackers: OsmAnd). Leaving the hub, the phone scans its parcels out for
delivery; at a door it sends a proof of delivery (a generated photo and signature) naming the
stop, or, when nobody is home, an "attempt failed" scan, and the carrier's system (an API key)
marks the stop failed. A driver whose vehicle broke down may report it from the app (an
incident). Phones without signal keep their fixes and send them when it returns.

Time: events happen at their virtual time, never before it has passed on the wall clock (so no
fix is ever from the future); `speedup` only lets a run that starts in the past catch up faster.
Ground truth (true stop arrivals and departures, true positions, why each leg took what it
took) is written to a JSON-lines file the platform never reads.
"""

from __future__ import annotations

import heapq
import io
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from django.db.models import Exists, OuterRef, Prefetch

from carriers.models import Device, DeviceKind
from carriers.services import device_rotate_token
from control_tower.models import Membership, Organization
from control_tower.services import api_key_create
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.roles import Role, Scope
from control_tower.tenancy.scope import organization_scope
from tracking.models import (
    ACTIVE_ROUTE_STATUSES,
    OPEN_STOP_STATUSES,
    Route,
    RouteStatus,
    Shipment,
    Stop,
)
from tracking.simulation.timeline import RouteTimeline, route_timeline, stop_plan
from tracking.simulation.world import World, WorldConfig

logger = logging.getLogger(__name__)


@dataclass
class Vehicle:
    route: Route
    device: Device
    token: str
    timeline: RouteTimeline
    buffer: list


def worked_in_the_driver_app() -> Exists:
    """The rule that leaves a route to a person: its driver signs in to the driver app (the
    driver record is linked to a login with the driver role in the route's organization, as
    driver@demo.example is to DRV-001). The live simulator never drives such a route, whatever
    its status: the person does, from /driver/. History replays and the exceptions evaluation
    play out days nobody works by hand, so they still play every route."""
    return Exists(
        Membership.objects.filter(
            user=OuterRef("driver__user"), organization=OuterRef("organization"), role=Role.DRIVER
        )
    )


def build_timelines(
    organization,
    day: date,
    start: datetime,
    world: World,
    interval_s: int,
    *,
    leave_people_their_routes: bool = False,
):
    """(route, timeline) for every planned or running route of the day with stops left;
    `leave_people_their_routes`: except those `worked_in_the_driver_app` (the live run)."""
    zone = ZoneInfo(organization.time_zone)
    routes = Route.objects.filter(date=day, status__in=ACTIVE_ROUTE_STATUSES)
    if leave_people_their_routes:
        routes = routes.exclude(worked_in_the_driver_app())
    routes = (
        routes.select_related("hub", "driver", "vehicle", "carrier")
        .prefetch_related(
            Prefetch("stops", queryset=Stop.objects.order_by("sequence")),
            Prefetch("stops__shipments", queryset=Shipment.objects.order_by("id")),
        )
        .order_by("code")
    )
    built = []
    for route in routes:
        stops = list(route.stops.all())
        done = [s for s in stops if s.status not in OPEN_STOP_STATUSES]
        left = [s for s in stops if s.status in OPEN_STOP_STATUSES]
        if not left:
            continue
        here = done[-1].location if done and done[-1].location else route.hub.location
        begin = max(start, route.planned_start) if route.status == RouteStatus.PLANNED else start
        plans = [stop_plan(s) for s in left if s.location is not None]
        timeline = route_timeline(
            world,
            route_id=route.pk,
            code=route.code,
            day=day.isoformat(),
            start=begin,
            start_point=here,
            hub=route.hub.location,
            stops=plans,
            zone=zone,
            interval_s=interval_s,
            may_start_late=route.status == RouteStatus.PLANNED,
            carrier=route.carrier.code if route.carrier_id else "",
            driver=route.driver.external_id if route.driver_id else "",
        )
        built.append((route, plans, timeline))
    return built


def write_truth(path: Path, timelines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for route, _plans, timeline in timelines:
            out.write(
                json.dumps({"type": "route", "route": route.code, "legs": timeline.legs}) + "\n"
            )
            for stop in timeline.stops:
                out.write(
                    json.dumps(
                        {
                            "type": "stop",
                            "route": route.code,
                            "sequence": stop.sequence,
                            "stop": stop.stop_id,
                            "arrival": stop.arrival.isoformat(),
                            "departure": stop.departure.isoformat(),
                            "outcome": stop.outcome,
                            "reason": stop.reason,
                        }
                    )
                    + "\n"
                )
            for condition in timeline.conditions:
                row = {
                    key: value.isoformat() if isinstance(value, datetime) else value
                    for key, value in condition.items()
                }
                out.write(json.dumps({"type": "condition", **row}) + "\n")
            for sample in timeline.samples:
                out.write(
                    json.dumps(
                        {
                            "type": "position",
                            "route": route.code,
                            "t": sample.t.isoformat(),
                            "lon": round(sample.lon, 7),
                            "lat": round(sample.lat, 7),
                        }
                    )
                    + "\n"
                )


class Simulation:
    def __init__(
        self,
        organization: Organization,
        *,
        day: date,
        start: datetime,
        config: WorldConfig,
        base_url: str,
        speedup: float = 1.0,
        interval_s: int = 5,
        truth_path: Path,
        log=print,
    ):
        self.organization = organization
        self.day, self.start = day, start
        self.world = World(config)
        self.base_url = base_url.rstrip("/")
        self.speedup = max(speedup, 0.001)
        self.interval_s = interval_s
        self.truth_path = truth_path
        self.log = log
        self.sent = {
            "pings": 0,
            "scans": 0,
            "pods": 0,
            "failures": 0,
            "incidents": 0,
            "errors": 0,
        }

    # -- set-up ------------------------------------------------------------------------------

    def compute(self) -> None:
        """The ground truth only (deterministic for a seed and a start); nothing is sent."""
        with organization_scope(self.organization):
            self.timelines = build_timelines(
                self.organization,
                self.day,
                self.start,
                self.world,
                self.interval_s,
                leave_people_their_routes=True,
            )
        self.plans = {route.pk: plans for route, plans, _timeline in self.timelines}
        write_truth(self.truth_path, self.timelines)

    def prepare(self) -> list[Vehicle]:
        self.compute()
        with organization_scope(self.organization):
            owner = Membership.objects.filter(role=Role.OWNER).select_related("user").first()
            actor = Actor(
                organization=self.organization, user=owner.user if owner else None, role=Role.OWNER
            )
            _key, self.api_key = api_key_create(
                actor=actor,
                name=f"simulator {self.day}",
                scopes=[Scope.ROUTES_WRITE, Scope.TRACKING_WRITE],
                expires_at=datetime.now(UTC) + timedelta(days=2),
            )
            vehicles = []
            for route, _plans, timeline in self.timelines:
                device = (
                    Device.objects.filter(driver=route.driver_id, revoked_at__isnull=True).first()
                    or Device.objects.filter(vehicle=route.vehicle_id).first()
                )
                if device is None:
                    self.log(f"{route.code}: no device for its driver or vehicle; skipped")
                    continue
                # The simulator is the phone: it takes over the device's credential.
                device, token = device_rotate_token(device=device)
                vehicles.append(Vehicle(route, device, token, timeline, []))
        return vehicles

    # -- playing -----------------------------------------------------------------------------

    def events(self, vehicles):
        queue = []
        for n, vehicle in enumerate(vehicles):
            timeline = vehicle.timeline
            heapq.heappush(queue, (timeline.start, n, 0, "depart", None))
            for sample in timeline.samples:
                heapq.heappush(queue, (sample.t, n, 1, "ping", sample))
            for stop in timeline.stops:
                heapq.heappush(queue, (stop.departure, n, 2, stop.outcome, stop))
            for condition in timeline.conditions:
                if condition["kind"] == "breakdown":
                    heapq.heappush(queue, (condition["reported_at"], n, 1, "incident", condition))
            heapq.heappush(queue, (timeline.end, n, 3, "back", None))
        while queue:
            at, n, _order, kind, payload = heapq.heappop(queue)
            yield at, vehicles[n], kind, payload

    def run(self, *, max_events: int | None = None) -> dict:
        vehicles = self.prepare()
        wall_start, virtual_start = time.monotonic(), self.start
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            self.client = client
            for count, (at, vehicle, kind, payload) in enumerate(self.events(vehicles), start=1):
                self._wait(at, wall_start, virtual_start)
                getattr(self, f"_on_{kind}")(vehicle, at, payload)
                if max_events is not None and count >= max_events:
                    break
            for vehicle in vehicles:
                self._flush(vehicle)
        return self.sent

    def _wait(self, at: datetime, wall_start: float, virtual_start: datetime) -> None:
        paced = wall_start + (at - virtual_start).total_seconds() / self.speedup
        lag_behind_now = (at - datetime.now(UTC)).total_seconds()
        delay = max(paced - time.monotonic(), lag_behind_now, 0.0)
        if delay > 0:
            time.sleep(delay)

    def _post(self, method: str, url: str, **kwargs) -> httpx.Response | None:
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.sent["errors"] += 1
            self.log(f"{method} {url}: {exc}")
            return None
        if response.status_code >= 400:
            self.sent["errors"] += 1
            self.log(f"{method} {url}: {response.status_code} {response.text[:200]}")
        return response

    # -- what the phone does -----------------------------------------------------------------

    def _on_depart(self, vehicle: Vehicle, at: datetime, _payload) -> None:
        """Leaving the hub: the phone scans the parcels out for delivery and the carrier's
        system starts the route (as it completes it at the end). Until a route runs, the rules
        that watch running routes (stalled, signal lost, off route, battery) cannot see it and
        `route_not_started` holds."""
        profile = self.world.profile(vehicle.route.carrier.code)
        scans = [
            {
                "barcode": barcode,
                "scan_type": "out_for_delivery",
                "occurred_at": at.isoformat(),
                "event_id": f"sim-{self.day}-{vehicle.route.code}-ofd-{barcode}"[:64],
            }
            for plan in self.plans[vehicle.route.pk]
            for shipment_id, barcode in zip(plan.shipment_ids, plan.barcodes, strict=True)
            # Some carriers' drivers skip the scan (the same draw as in history).
            if self.world.rng("ofd-scan", shipment_id).random()
            >= profile.skip_out_for_delivery_scan
        ]
        if scans:
            self._post(
                "POST",
                "/api/v1/ingest/scans",
                json={"scans": scans},
                headers={"Authorization": f"Device {vehicle.token}"},
            )
            self.sent["scans"] += len(scans)
        if vehicle.route.status == RouteStatus.PLANNED:
            self._post(
                "POST",
                f"/api/v1/routes/{vehicle.route.pk}/start/",
                json={"occurred_at": at.isoformat()},
                headers={"Authorization": f"Api-Key {self.api_key}"},
            )

    def _on_ping(self, vehicle: Vehicle, at: datetime, sample) -> None:
        lon, lat, accuracy, _bad = self.world.gps(
            vehicle.route.code, at.isoformat(), lon=sample.lon, lat=sample.lat
        )
        fix = {
            "time": at.isoformat(),
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "accuracy": accuracy,
            "speed": round(sample.speed_mps, 2),
            "heading": round(sample.heading, 1),
            "moving": sample.speed_mps > 0.5,
        }
        if sample.battery_pct is not None:
            fix["battery"] = sample.battery_pct
            fix["charging"] = bool(sample.charging)
        vehicle.buffer.append(fix)
        if sample.offline:
            return  # no signal: the phone keeps it
        batch_size = 3 if vehicle.device.kind == DeviceKind.DRIVER_APP else 1
        if len(vehicle.buffer) >= batch_size:
            self._flush(vehicle)

    def _flush(self, vehicle: Vehicle) -> None:
        fixes, vehicle.buffer = vehicle.buffer, []
        if not fixes:
            return
        kind = vehicle.device.kind
        if kind == DeviceKind.DRIVER_APP:
            self._post(
                "POST",
                "/api/v1/ingest/pings",
                json=fixes,
                headers={"Authorization": f"Device {vehicle.token}"},
            )
        elif kind == DeviceKind.OWNTRACKS:
            for fix in fixes:
                message = {
                    "_type": "location",
                    "lat": fix["lat"],
                    "lon": fix["lon"],
                    "tst": int(datetime.fromisoformat(fix["time"]).timestamp()),
                    "acc": round(fix["accuracy"]),
                    "vel": round(fix["speed"] * 3.6),
                    "cog": round(fix["heading"]),
                    "tid": vehicle.route.code[-2:],
                }
                self._post(
                    "POST",
                    "/ingest/owntracks/",
                    json=message,
                    auth=(vehicle.route.code, vehicle.token),
                )
        else:  # Traccar Client and trackers: OsmAnd
            for fix in fixes:
                params = {
                    "id": vehicle.device.pk,
                    "lat": fix["lat"],
                    "lon": fix["lon"],
                    "timestamp": int(datetime.fromisoformat(fix["time"]).timestamp()),
                    "speed": round(fix["speed"] / 0.514444, 2),
                    "bearing": fix["heading"],
                    "accuracy": fix["accuracy"],
                }
                self._post("GET", f"/ingest/osmand/{vehicle.token}/", params=params)
        self.sent["pings"] += len(fixes)

    def _on_incident(self, vehicle: Vehicle, at: datetime, _condition) -> None:
        """Broken down: the driver reports it from the app, which raises the route's incident
        alert for dispatch (the world decided whether and when: docs/SIMULATION.md)."""
        self._post(
            "POST",
            "/api/v1/incidents/",
            json={
                "route": vehicle.route.pk,
                "kind": "breakdown",
                "note": "Simulated: the vehicle broke down on the road",
            },
            headers={"Authorization": f"Device {vehicle.token}"},
        )
        self.sent["incidents"] += 1

    def _on_delivered(self, vehicle: Vehicle, at: datetime, stop) -> None:
        self._flush(vehicle)
        plan = next(p for p in self.plans[vehicle.route.pk] if p.stop_id == stop.stop_id)
        photo, signature = _pod_images(f"{vehicle.route.code} #{stop.sequence}")
        lon, lat, _acc, _bad = self.world.gps(
            "pod", vehicle.route.code, stop.sequence, lon=plan.location.x, lat=plan.location.y
        )
        for shipment_id in plan.shipment_ids:
            self._post(
                "POST",
                "/api/v1/ingest/pod",
                data={
                    "shipment": shipment_id,
                    "stop": stop.stop_id,
                    "idempotency_key": f"sim-{self.day}-{vehicle.route.code}-{shipment_id}",
                    "recipient_name": "Simulated recipient",
                    "lat": lat,
                    "lon": lon,
                    "captured_at": at.isoformat(),
                },
                files=[
                    ("photos", ("door.jpg", photo, "image/jpeg")),
                    ("signature", ("signature.png", signature, "image/png")),
                ],
                headers={"Authorization": f"Device {vehicle.token}"},
            )
            self.sent["pods"] += 1

    def _on_back(self, vehicle: Vehicle, at: datetime, _payload) -> None:
        """Back at the hub: the carrier's system closes the route."""
        self._flush(vehicle)
        self._post(
            "POST",
            f"/api/v1/routes/{vehicle.route.pk}/complete/",
            json={"occurred_at": at.isoformat()},
            headers={"Authorization": f"Api-Key {self.api_key}"},
        )

    def _on_failed(self, vehicle: Vehicle, at: datetime, stop) -> None:
        self._flush(vehicle)
        plan = next(p for p in self.plans[vehicle.route.pk] if p.stop_id == stop.stop_id)
        scans = [
            {
                "barcode": barcode,
                "scan_type": "attempt_failed",
                "reason_code": stop.reason,
                "occurred_at": at.isoformat(),
                "event_id": f"sim-{self.day}-{vehicle.route.code}-fail-{barcode}"[:64],
            }
            for barcode in plan.barcodes
        ]
        self._post(
            "POST",
            "/api/v1/ingest/scans",
            json={"scans": scans},
            headers={"Authorization": f"Device {vehicle.token}"},
        )
        self._post(
            "POST",
            f"/api/v1/stops/{stop.stop_id}/fail/",
            json={
                "reason": stop.reason,
                "occurred_at": at.isoformat(),
                "note": "Simulated failed attempt",
            },
            headers={"Authorization": f"Api-Key {self.api_key}"},
        )
        self.sent["failures"] += 1


def _pod_images(label: str) -> tuple[bytes, bytes]:
    from PIL import Image, ImageDraw

    photo = Image.new("RGB", (320, 240), (150, 110, 80))
    ImageDraw.Draw(photo).text((10, 10), f"Parcel at the door\n{label}", fill=(255, 255, 255))
    signature = Image.new("L", (240, 80), 255)
    ImageDraw.Draw(signature).line(
        [(10, 60), (60, 20), (110, 55), (170, 25), (230, 50)], fill=0, width=3
    )
    photo_bytes, signature_bytes = io.BytesIO(), io.BytesIO()
    photo.save(photo_bytes, format="JPEG")
    signature.save(signature_bytes, format="PNG")
    return photo_bytes.getvalue(), signature_bytes.getvalue()
