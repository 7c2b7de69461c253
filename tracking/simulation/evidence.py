"""What a past route leaves behind besides its stop times, for the SLA scorecards: GPS fixes,
the ETAs customers were shown, and the ratings they gave. Written in bulk (weeks of history in
seconds) as the platform stores them, never through the live paths that would move a vehicle's
last position or recompute ETAs. Scans and proofs of delivery go through their services
(tracking/simulation/history.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from carriers.models import DeviceKind
from tracking.ingest.partitions import create_partition, existing_partitions
from tracking.models import DeliveryRating, EtaRevision, PingFlag, PingSource
from tracking.simulation.timeline import RouteTimeline
from tracking.simulation.world import CarrierProfile, World

ETA_EVERY = timedelta(minutes=30)  # the customer's window is re-sent this often
RATED_SHARE = 0.3  # of delivered shipments, the recipient rates the delivery
COMMENTS = {
    5: ["", "", "Muy amable, gracias.", "Perfect, on time."],
    4: ["", "Good, a bit later than shown."],
    3: ["", "Left with the neighbour without asking."],
    2: ["Came outside the window.", "Nobody called before."],
    1: ["Parcel thrown over the gate.", "Hours late, no notice."],
}
SOURCES = {
    DeviceKind.DRIVER_APP: PingSource.NATIVE,
    DeviceKind.OWNTRACKS: PingSource.OWNTRACKS,
}

# As tracking/ingest/pings.py stores a batch, without moving the device's last position (the
# past must not put a vehicle back where it was last week).
INSERT_PAST_PINGS = """
INSERT INTO tracking_ping (
    organization_id, device_id, fix_time, event_id, received_at, location, accuracy_m,
    speed_mps, heading_deg, altitude_m, battery_pct, charging, moving, mock, source, flags,
    attributes
)
SELECT %(organization)s, %(device)s, t.fix_time, '', t.received_at,
       ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4326), t.accuracy_m, t.speed_mps, t.heading_deg,
       NULL, t.battery_pct, t.charging, t.moving, false, %(source)s, t.flags, '{}'::jsonb
FROM json_to_recordset(%(batch)s::json) AS t(
    fix_time timestamptz, received_at timestamptz, lon float8, lat float8, accuracy_m float8,
    speed_mps float8, heading_deg float8, battery_pct int2, charging bool, moving bool,
    flags int4
)
ON CONFLICT DO NOTHING
"""


def ensure_past_partitions(start: datetime, end: datetime) -> None:
    """Daily ping partitions for the UTC days of [start, end] (the beat job only makes them
    from yesterday on; without one, the fixes would sit in the default partition)."""
    have = existing_partitions()
    day, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    while day <= last:
        if day not in have:
            create_partition(day)
        day += timedelta(days=1)


def record_pings(world: World, organization, device, timeline: RouteTimeline) -> int:
    """One fix a sample of the route's timeline (the replay samples once a minute). Samples
    without signal are GPS gaps in history: no fix at all, which is what tracking coverage
    measures. Returns the rows inserted."""
    rows = []
    for sample in timeline.samples:
        if sample.offline:
            continue
        lon, lat, accuracy, _bad = world.gps(
            timeline.code, sample.t.isoformat(), lon=sample.lon, lat=sample.lat
        )
        flags = PingFlag.POOR_ACCURACY if accuracy > settings.PING_MAX_ACCURACY_M else 0
        rows.append(
            {
                "fix_time": sample.t.isoformat(),
                "received_at": (sample.t + timedelta(seconds=2)).isoformat(),
                "lon": round(lon, 7),
                "lat": round(lat, 7),
                "accuracy_m": accuracy,
                "speed_mps": round(sample.speed_mps, 2),
                "heading_deg": round(sample.heading, 1),
                "battery_pct": sample.battery_pct,
                "charging": sample.charging,
                "moving": sample.speed_mps > 0.5,
                "flags": int(flags),
            }
        )
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_PAST_PINGS,
            {
                "organization": organization.pk,
                "device": device.pk,
                "source": SOURCES.get(device.kind, PingSource.OSMAND),
                "batch": json.dumps(rows),
            },
        )
        return cursor.rowcount


def eta_revisions(
    world: World, organization, profile: CarrierProfile, timeline: RouteTimeline
) -> list[EtaRevision]:
    """The windows customers were shown: at the start and every ETA_EVERY, for each stop not
    reached yet, an ETA whose error grows with the horizon and with the carrier's profile
    (slow carriers' ETAs run early: the estimate trusts the plan more than the driver)."""
    revisions = []
    computed = timeline.start
    while computed < timeline.end:
        for truth in timeline.stops:
            if truth.arrival <= computed:
                continue
            horizon_h = (truth.arrival - computed).total_seconds() / 3600
            sigma = profile.eta_error * (4.0 + 7.0 * horizon_h)  # minutes
            rng = world.rng("eta", timeline.code, truth.sequence, computed.isoformat())
            eta = truth.arrival + timedelta(minutes=rng.gauss(-0.25 * sigma, sigma))
            eta = max(eta, computed + timedelta(minutes=1))
            half = timedelta(minutes=10 + 5 * horizon_h)
            revisions.append(
                EtaRevision(
                    organization=organization,
                    stop_id=truth.stop_id,
                    computed_at=computed,
                    eta=eta.replace(microsecond=0),
                    earliest=(eta - half).replace(microsecond=0),
                    latest=(eta + half).replace(microsecond=0),
                    method="history",
                )
            )
        computed += ETA_EVERY
    return revisions


def ratings(
    world: World, organization, profile: CarrierProfile, route, timeline: RouteTimeline, stops
) -> list[DeliveryRating]:
    """About RATED_SHARE of the delivered shipments rated, stars as the carrier's profile
    says; a delivery after its window loses a star. `stops`: {stop id: Stop with shipments}."""
    now = timezone.now()
    found = []
    for truth in timeline.stops:
        if truth.outcome != "delivered":
            continue
        stop = stops[truth.stop_id]
        for shipment in stop.shipments.all():
            rng = world.rng("rating", shipment.pk)
            if rng.random() >= RATED_SHARE:
                continue
            stars = rng.choices([5, 4, 3, 2, 1], weights=profile.stars)[0]
            window_end = shipment.promised_window_end
            if window_end is not None and truth.departure > window_end:
                stars = max(1, stars - 1)
            found.append(
                DeliveryRating(
                    organization=organization,
                    shipment=shipment,
                    carrier_id=route.carrier_id,
                    driver_id=route.driver_id,
                    stars=stars,
                    comment=rng.choice(COMMENTS[stars]),
                    delivered_at=truth.departure,
                    created_at=min(now, truth.departure + timedelta(hours=rng.uniform(0.5, 20))),
                )
            )
    return found
