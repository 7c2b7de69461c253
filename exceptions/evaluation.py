"""The exception rules measured against the simulator's ground truth.

A planned day is played out in-process at simulated time: every `step_s` seconds of the day the
fixes the phones would have sent by then go through the real ingest (`pings_ingest`, buffered
fixes arrive late when the signal returns), the stops are arrived at, completed or failed and
the routes started and completed through the services the API uses, ETAs are recomputed every
`eta_every_s`, the outbox relay delivers (the event rules: predicted late, failed attempt) and
the sweep runs with that `now` (signal lost, stalled, off route, battery, route not started,
long dwell). After each step the alerts are read back and the simulated moment each one was
first seen (raised) and resolved is kept: detection delay is measured in simulated time.

Matching, per kind: an alert matches a truth record of the same route (and stop, for stop
kinds) when it was raised between the truth's start and its end plus GRACE. Precision: matched
alerts / alerts; recall: eligible truths with a matched alert / eligible truths (a condition
shorter than the rule's own threshold cannot be detected and is not counted); delay: first
matching raise minus the truth start (predicted late: lead time = window end minus the raise);
false alarms per 100 route-hours: unmatched alerts; flapping: an alert raised for a subject
within FLAP_WINDOW of the previous alert of that subject being resolved.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Q

from carriers.models import Device
from control_tower.events.relay import relay_pending
from control_tower.models import Membership
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from exceptions.incidents import IncidentKind, incident_report
from exceptions.models import Alert, AlertKind, AlertState
from exceptions.services import alert_clear, alert_resolve
from exceptions.sweep import sweep_organization
from exceptions.thresholds import thresholds_for
from tracking.eta.recompute import route_eta_update
from tracking.ingest.auth import actor_for_device
from tracking.ingest.fixes import Fix
from tracking.ingest.pings import pings_ingest
from tracking.models import DevicePosition, FailureReason, PingSource, Route, RouteStatus, Stop
from tracking.services.routes import route_complete, route_start
from tracking.services.stops import stop_arrive, stop_complete, stop_fail
from tracking.simulation.runner import build_timelines
from tracking.simulation.world import World

GRACE = timedelta(minutes=5)
FLAP_WINDOW = timedelta(minutes=10)
STOP_KINDS = {AlertKind.PREDICTED_LATE, AlertKind.LONG_DWELL, AlertKind.FAILED_ATTEMPT}
KINDS = [
    AlertKind.STALLED,
    AlertKind.SIGNAL_LOST,
    AlertKind.OFF_ROUTE,
    AlertKind.ROUTE_NOT_STARTED,
    AlertKind.BATTERY_LOW,
    AlertKind.LONG_DWELL,
    AlertKind.FAILED_ATTEMPT,
    AlertKind.PREDICTED_LATE,
    AlertKind.INCIDENT,
]
# The truth a kind is scored against, when it is not named like the alert: an incident alert
# is the driver's report of a breakdown (docs/SIMULATION.md "Injected conditions").
TRUTH_KINDS = {AlertKind.INCIDENT: "breakdown"}


@dataclass
class Seen:
    """An alert as the evaluation saw it, in simulated time."""

    id: int
    kind: str
    subject: str
    route_id: int | None
    stop_id: int | None
    raised: datetime
    resolved: datetime | None = None


@dataclass
class DayRun:
    truths: list[dict] = field(default_factory=list)
    alerts: dict[int, Seen] = field(default_factory=dict)
    route_hours: float = 0.0
    steps: int = 0


def _events(organization, timelines, world: World) -> list[tuple]:
    """(when, order, action, args) for everything that happens, in time order. Fixes taken
    without signal are delivered with the first fix that gets through."""
    events = []
    devices = {}
    for route, _plans, timeline in timelines:
        # The phone the HTTP simulator would drive (tracking/simulation/runner.py).
        device = (
            Device.objects.filter(driver=route.driver_id, revoked_at__isnull=True).first()
            if route.driver_id
            else None
        ) or (Device.objects.filter(vehicle=route.vehicle_id).first() if route.vehicle_id else None)
        events.append((timeline.start, 0, "start", route.pk))
        if device is not None:
            devices[route.pk] = device
            held = []
            for sample in timeline.samples:
                lon, lat, accuracy, _bad = world.gps(
                    route.code, sample.t.isoformat(), lon=sample.lon, lat=sample.lat
                )
                held.append(
                    Fix(
                        fix_time=sample.t,
                        lat=round(lat, 7),
                        lon=round(lon, 7),
                        accuracy_m=accuracy,
                        speed_mps=round(sample.speed_mps, 2),
                        heading_deg=round(sample.heading, 1),
                        moving=sample.speed_mps > 0.5,
                        battery_pct=sample.battery_pct,
                        charging=sample.charging,
                    )
                )
                if not sample.offline:
                    events.append((sample.t, 1, "fixes", (device, held)))
                    held = []
        events.extend(_incident_events(organization, route, timeline, devices.get(route.pk)))
        for truth in timeline.stops:
            events.append((truth.arrival, 2, "arrive", truth.stop_id))
            done = "complete" if truth.outcome == "delivered" else "fail"
            events.append((truth.departure, 3, done, truth.stop_id))
        events.append((timeline.end, 4, "finish", route.pk))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def _incident_events(organization, route, timeline, device) -> list[tuple]:
    """A breakdown the driver reports: the phone's report (the service behind
    `POST /api/v1/incidents/`, as that device) at the truth's `reported_at`, and a dispatcher
    resolving the incident alert once the vehicle moves on (so a second breakdown of the route
    raises a new one, as it would in the console)."""
    events = []
    for truth in timeline.conditions:
        if truth["kind"] != "breakdown" or device is None:
            continue
        events.append((truth["reported_at"], 1, "incident", (device, route.pk)))
        moving = max(truth["ended_at"], truth["reported_at"])  # a report held back by no signal
        events.append((moving, 1, "incident_resolved", (organization, route.pk)))
    return events


def _incident(action: str, args) -> None:
    if action == "incident":
        device, route_id = args
        incident_report(
            actor=actor_for_device(device),
            route_id=route_id,
            kind=IncidentKind.BREAKDOWN,
            note="Simulated day (exceptions evaluation)",
        )
        return
    organization, route_id = args
    alert = (
        Alert.objects.filter(kind=AlertKind.INCIDENT, subject_id=str(route_id))
        .exclude(state=AlertState.RESOLVED)
        .first()
    )
    membership = (
        Membership.objects.filter(role__in=[Role.DISPATCHER, Role.OWNER])
        .select_related("user")
        .order_by("role")  # "dispatcher" < "owner": the dispatcher if there is one
        .first()
    )
    if alert is not None and membership is not None:
        actor = Actor(organization=organization, user=membership.user, role=membership.role)
        alert_resolve(actor=actor, alert_id=alert.pk, resolution_code="fixed", note="Moving again")


def _apply(action: str, args, at: datetime, now: datetime) -> None:
    if action.startswith("incident"):
        _incident(action, args)
        return
    if action == "fixes":
        device, fixes = args
        pings_ingest(device=device, fixes=fixes, source=PingSource.NATIVE, received_at=now)
        return
    with transaction.atomic():
        if action == "start":
            route_start(route=Route.objects.get(pk=args), actor=None, at=at)
        elif action == "finish":
            route_complete(route=Route.objects.get(pk=args), actor=None, at=at)
        else:
            stop = Stop.objects.get(pk=args)
            if action == "arrive":
                stop_arrive(stop=stop, actor=None, at=at)
            elif action == "complete":
                stop_complete(stop=stop, actor=None, at=at)
            else:
                stop_fail(
                    stop=stop,
                    reason=FailureReason.NOT_HOME,
                    actor=None,
                    at=at,
                    note="Simulated day (exceptions evaluation)",
                )


def _observe(run: DayRun, now: datetime, since: datetime, routes: list[int]) -> None:
    alerts = (
        Alert.objects.filter(route_id__in=routes)
        .filter(
            Q(pk__in=[a.id for a in run.alerts.values() if a.resolved is None])
            | Q(raised_at__gte=since)
        )
        .only("id", "kind", "subject_id", "route_id", "stop_id", "resolved_at")
    )
    for alert in alerts:
        seen = run.alerts.get(alert.pk)
        if seen is None:
            seen = run.alerts[alert.pk] = Seen(
                alert.pk, alert.kind, alert.subject_id, alert.route_id, alert.stop_id, now
            )
        if alert.resolved_at is not None and seen.resolved is None:
            seen.resolved = now


def play_day(organization, day: date, world: World, *, step_s: int = 30, eta_every_s: int = 300):
    """Play the organization's planned routes of `day` out with the live rules. The day must
    be in the past (fixes are never from the future) and its routes not started yet; the
    phones it drives must not be live meanwhile (their last positions are rewound)."""
    run = DayRun()
    with organization_scope(organization):
        routes = Route.objects.filter(date=day, status=RouteStatus.PLANNED)
        first = routes.order_by("planned_start").values_list("planned_start", flat=True).first()
        if first is None:
            return run
        timelines = build_timelines(organization, day, first, world, interval_s=5)
        for _route, _plans, timeline in timelines:
            run.truths.extend(timeline.conditions)
            run.route_hours += (timeline.end - timeline.start).total_seconds() / 3600
        events = _events(organization, timelines, world)
        played = [route.pk for route, _plans, _timeline in timelines]
        # The newest-fix table only moves forward: a phone that reported after this day (a
        # later evaluated day, a live demo) would look alive and elsewhere all day. Its rows are
        # derived (the next fix rewrites them), so the played phones start from none.
        phones = {e[3][0].pk for e in events if e[2] == "fixes"}
        DevicePosition.objects.filter(device_id__in=phones).delete()
        watched = Alert.objects.values_list("pk", flat=True)
        already = set(watched)
        end = max(t.end for _r, _p, t in timelines) + timedelta(minutes=30)
        now, index = first, 0
        last_eta = first - timedelta(seconds=eta_every_s)
        wall_since = datetime.now(tz=first.tzinfo) - timedelta(seconds=5)
        while now <= end:
            batch: dict[int, tuple] = {}  # one ingest per device per step, as a phone batches
            while index < len(events) and events[index][0] <= now:
                at, _order, action, args = events[index]
                index += 1
                if action == "fixes":
                    device, fixes = args
                    batch.setdefault(device.pk, (device, []))[1].extend(fixes)
                    continue
                for device, fixes in batch.values():
                    _apply("fixes", (device, fixes), at, now)
                batch = {}
                _apply(action, args, at, now)
            for device, fixes in batch.values():
                _apply("fixes", (device, fixes), now, now)
            if eta_every_s and now - last_eta >= timedelta(seconds=eta_every_s):
                for route in Route.objects.filter(date=day, status=RouteStatus.IN_PROGRESS):
                    route_eta_update(route, now=now)
                last_eta = now
            relay_pending(budget_s=30)
            sweep_organization(organization, now)
            relay_pending(budget_s=30)
            _observe(run, now, wall_since, played)
            for alert_id in already:
                run.alerts.pop(alert_id, None)
            run.steps += 1
            now += timedelta(seconds=step_s)
        _close_played(organization, run)
    return run


def _close_played(organization, run: DayRun) -> None:
    """A played day is over: its alerts still open (a failed attempt nobody rescheduled, an
    incident no dispatcher resolved) are resolved as part of the evaluation, so an evaluated
    database does not show days-old alerts in the console afterwards."""
    open_alerts = Alert.objects.filter(pk__in=list(run.alerts)).exclude(state=AlertState.RESOLVED)
    for alert in open_alerts.only("kind", "subject_type", "subject_id"):
        alert_clear(
            organization_id=organization.pk,
            kind=alert.kind,
            subject_type=alert.subject_type,
            subject_id=alert.subject_id,
            reason="evaluation day played",
        )


def _eligible(truth: dict, limits: dict) -> bool:
    """A condition shorter than its rule's threshold (plus a sweep) cannot be detected."""
    need = limits.get(truth["kind"])
    if truth["kind"] == "stalled" and truth.get("nearest_stop_m", 1e9) < 150:
        return False  # stood near a stop: service, not a stall, by the rule's definition
    if need is None or truth["ended_at"] is None:
        return True
    return (truth["ended_at"] - truth["started_at"]).total_seconds() > need + 60


def _limits(organization) -> dict:
    """The organization-wide thresholds, in seconds of condition, per kind."""
    t = thresholds_for(organization.pk, None)
    return {
        "stalled": t.stalled_min * 60,
        "signal_lost": t.signal_lost_min * 60,
        "off_route": t.off_route_s,
        "route_not_started": t.route_not_started_min * 60,
    }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def score(organization, runs: list[DayRun]) -> dict:
    """Per kind: precision, recall, delays, false alarms per 100 route-hours, flapping."""
    limits = _limits(organization)
    route_hours = sum(r.route_hours for r in runs)
    results: dict = {"route_hours": round(route_hours, 1), "days": len(runs)}
    for kind in KINDS:
        truth_kind = TRUTH_KINDS.get(kind, kind)
        truths = [t for r in runs for t in r.truths if t["kind"] == truth_kind]
        alerts = [a for r in runs for a in r.alerts.values() if a.kind == kind]
        matched_alerts, delays, found = set(), [], 0
        after_report = []  # incident: delay after the driver's report
        eligible = [t for t in truths if _eligible(t, limits)]
        for truth in truths:
            end = (truth["ended_at"] or truth["started_at"] + timedelta(hours=2)) + GRACE
            begin = truth["started_at"]
            if kind == AlertKind.PREDICTED_LATE:
                begin = begin - timedelta(hours=12)  # a prediction comes before the fact
            hits = [
                a
                for a in alerts
                if a.route_id == truth["route_id"]
                and (kind not in STOP_KINDS or a.stop_id == truth.get("stop"))
                and begin <= a.raised <= end
            ]
            matched_alerts.update(a.id for a in hits)
            if hits and truth in eligible:
                found += 1
                first = min(a.raised for a in hits)
                if kind == AlertKind.PREDICTED_LATE:
                    delays.append((truth["window_end"] - first).total_seconds())
                else:
                    delays.append((first - truth["started_at"]).total_seconds())
                if "reported_at" in truth:
                    after_report.append((first - truth["reported_at"]).total_seconds())
        false = [a for a in alerts if a.id not in matched_alerts]
        flaps = 0
        by_subject = defaultdict(list)
        for alert in alerts:
            by_subject[alert.subject].append(alert)
        for items in by_subject.values():
            items.sort(key=lambda a: a.raised)
            for before, after in zip(items, items[1:], strict=False):
                if before.resolved and after.raised - before.resolved <= FLAP_WINDOW:
                    flaps += 1
        name = "lead" if kind == AlertKind.PREDICTED_LATE else "delay"
        results.update(
            {
                f"{kind}_truths": len(truths),
                f"{kind}_eligible": len(eligible),
                f"{kind}_alerts": len(alerts),
                f"{kind}_precision_pct": (
                    round(100 * len(matched_alerts & {a.id for a in alerts}) / len(alerts), 1)
                    if alerts
                    else None
                ),
                f"{kind}_recall_pct": round(100 * found / len(eligible), 1) if eligible else None,
                f"{kind}_{name}_p50_s": (round(statistics.median(delays), 1) if delays else None),
                f"{kind}_{name}_p90_s": _pct(delays, 0.9 if name == "delay" else 0.1),
                f"{kind}_false_alarms_per_100_route_h": (
                    round(100 * len(false) / route_hours, 2) if route_hours else None
                ),
                f"{kind}_flapping": flaps,
            }
        )
        if kind in limits or after_report:  # the targets count the delay after the rule's
            # own threshold; for an incident, the "threshold" is the driver's report
            after = after_report or [d - limits[kind] for d in delays]
            results[f"{kind}_delay_after_threshold_p50_s"] = (
                round(statistics.median(after), 1) if after else None
            )
    return results


def table(results: dict) -> str:
    head = (
        "| kind | truths (eligible) | alerts | precision % | recall % | delay P50 / P90 s "
        "| after threshold P50 s | false alarms / 100 route-h | flapping |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    rows = [head]
    for kind in KINDS:
        name = "lead" if kind == AlertKind.PREDICTED_LATE else "delay"
        rows.append(
            f"| {kind}{' (lead time)' if name == 'lead' else ''} "
            f"| {results[f'{kind}_truths']} ({results[f'{kind}_eligible']}) "
            f"| {results[f'{kind}_alerts']} | {_cell(results[f'{kind}_precision_pct'])} "
            f"| {_cell(results[f'{kind}_recall_pct'])} "
            f"| {_cell(results[f'{kind}_{name}_p50_s'])} "
            f"/ {_cell(results[f'{kind}_{name}_p90_s'])} "
            f"| {_cell(results.get(f'{kind}_delay_after_threshold_p50_s'))} "
            f"| {_cell(results[f'{kind}_false_alarms_per_100_route_h'])} "
            f"| {results[f'{kind}_flapping']} |"
        )
    return "\n".join(rows)


def _cell(value) -> str:
    return "–" if value is None else str(value)


def write_detail(path, runs: list[DayRun]) -> None:
    """Every truth and every alert as seen (simulated times), one JSON object a line."""
    import json
    from dataclasses import asdict

    def plain(row: dict) -> dict:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for run in runs:
            for truth in run.truths:
                out.write(json.dumps({"type": "truth", **plain(truth)}) + "\n")
            for seen in run.alerts.values():
                out.write(json.dumps({"type": "alert", **plain(asdict(seen))}) + "\n")
