"""Keeping stored ETAs current: recompute a route's windows, store them, keep a revision and
announce only material moves; and pick the routes that need it (the sweep). The estimation itself
is in `engine.py`."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from control_tower.events import catalog, emit_many
from tracking.eta.engine import ETA_REFRESH_S, OPEN, route_etas
from tracking.models import ACTIVE_ROUTE_STATUSES, DevicePosition, Route, Stop

# A move is material (a revision, a `stop.eta_changed`) when the ETA or the late end of the window
# moved, since the last ANNOUNCED window (the stop's latest revision, not the last stored one:
# small moves add up instead of slipping through one at a time), by more than
# ETA_MATERIAL_CHANGE_S or this share of the time still to go, whichever is more: a minute
# matters for the next stop, not for one three hours away, whose customer reads a window
# rounded to 30 minutes (tracking/eta_window.py). Vehicle-position jitter moved every later
# stop of a route by a minute or two at each recompute and announced them all (issue 19).
ETA_MATERIAL_SHARE = 0.05

# The whole store is one statement (one round trip, atomic without an explicit transaction):
# lock the route's still-open stops, write the new windows, keep a revision for the material
# moves, and return those (to announce them). The old values come from the locked snapshot.
STORE_ETAS = """
WITH new AS (
    SELECT * FROM unnest(
        %(ids)s::bigint[], %(etas)s::timestamptz[], %(earliest)s::timestamptz[],
        %(latest)s::timestamptz[]
    ) AS new(id, eta, earliest, latest)
),
old AS (
    SELECT s.id, s.sequence, shown.eta AS shown_eta, shown.latest AS shown_latest
    FROM tracking_stop s JOIN new ON new.id = s.id
    LEFT JOIN LATERAL (
        SELECT r.eta, r.latest FROM tracking_etarevision r
        WHERE r.organization_id = %(organization)s AND r.stop_id = s.id
        ORDER BY r.computed_at DESC, r.id DESC LIMIT 1
    ) shown ON true
    WHERE s.organization_id = %(organization)s AND s.route_id = %(route)s
      AND s.status = ANY(%(open)s)
    ORDER BY s.id
    FOR UPDATE OF s
),
stored AS (
    UPDATE tracking_stop s
    SET eta = new.eta, eta_earliest = new.earliest, eta_latest = new.latest,
        eta_updated_at = %(now)s
    FROM new JOIN old ON old.id = new.id
    WHERE s.id = new.id AND s.organization_id = %(organization)s
    RETURNING s.id, old.sequence, new.eta, new.earliest, new.latest,
        old.shown_eta IS NULL
        OR abs(extract(epoch FROM old.shown_eta - new.eta)) > greatest(
            %(threshold)s, %(share)s * extract(epoch FROM new.eta - %(now)s))
        OR abs(extract(epoch FROM old.shown_latest - new.latest)) > greatest(
            %(threshold)s, %(share)s * extract(epoch FROM new.eta - %(now)s)) AS material
),
revisions AS (
    INSERT INTO tracking_etarevision
        (organization_id, stop_id, computed_at, eta, earliest, latest, method)
    SELECT %(organization)s, id, %(now)s, eta, earliest, latest, %(method)s
    FROM stored WHERE material
)
SELECT id, sequence, eta, earliest, latest FROM stored WHERE material ORDER BY sequence
"""


def route_eta_update(route: Route, *, now: datetime | None = None) -> int:
    """Store fresh ETAs on the route's open stops; keep a revision and announce the change only
    when a window moved by more than ETA_MATERIAL_CHANGE_S. Returns how many moved.

    One statement writes everything (stops locked, revisions inserted); a stop that was
    finished meanwhile is left alone. Each material move emits `stop.eta_changed`."""
    now = now or timezone.now()
    if route.status not in ACTIVE_ROUTE_STATUSES:
        return 0
    etas = route_etas(route, now=now)
    if not etas:
        return 0
    params = {
        "ids": [e.stop_id for e in etas],
        "etas": [e.eta for e in etas],
        "earliest": [e.earliest for e in etas],
        "latest": [e.latest for e in etas],
        "organization": route.organization_id,
        "route": route.pk,
        "open": list(OPEN),
        "now": now,
        "threshold": settings.ETA_MATERIAL_CHANGE_S,
        "share": ETA_MATERIAL_SHARE,
        "method": etas[0].method,  # one estimator for the whole route
    }
    # ETAs are derived data, redone on the next ping or sweep: their commit need not wait for
    # the WAL to reach the disk (a crash loses at most the last few recomputes, never a ping).
    # Only in a transaction of our own: a caller's transaction keeps its durability.
    relaxed = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if relaxed:
            cursor.execute("SET LOCAL synchronous_commit TO off")
        cursor.execute(STORE_ETAS, params)
        moved = cursor.fetchall()
        # In the store's transaction: the outbox rows commit (or vanish) with the ETAs.
        announce_moves((route, *row) for row in moved)
    return len(moved)


def announce_moves(moves) -> None:
    """`stop.eta_changed` for each (route, stop id, sequence, eta, earliest, latest) that the
    store statement found material, in one outbox INSERT (call it in the store's transaction:
    the events commit or vanish with the ETAs)."""
    emit_many(
        [
            catalog.stop_eta_changed(
                route, stop_id=stop_id, sequence=sequence, eta=eta, earliest=earliest, latest=latest
            )
            for route, stop_id, sequence, eta, earliest, latest in moves
        ]
    )


def routes_needing_eta(now: datetime | None = None):
    """Today's active routes that have no ETAs yet, whose ETAs went stale, or whose vehicle
    reported since their ETAs were last computed more than two debounce windows ago: the
    trailing edge of the ping trigger (tracking/eta/triggers.py). A vehicle still reporting
    gets its recompute from its next ping once the window reopens; the sweep takes only the
    pings that nothing followed. (If the sweep took every route that reported, it would close
    every window itself and the pings would never trigger: one slow loop again.) One query
    for all routes: the sweep runs every few seconds."""
    now = now or timezone.now()
    trailing = now - timedelta(seconds=2 * settings.ETA_DEBOUNCE_S)
    open_stops = Stop.objects.filter(route=OuterRef("pk"), status__in=OPEN)
    active = (
        Route.objects.filter(
            status__in=ACTIVE_ROUTE_STATUSES,
            date__gte=(now - timedelta(days=1)).date(),
            date__lte=(now + timedelta(days=1)).date(),
        )
        .select_related("hub")
        .annotate(
            has_open=Exists(open_stops),
            last_eta=Subquery(open_stops.order_by("eta_updated_at").values("eta_updated_at")[:1]),
            behind_clock=Exists(open_stops.filter(eta__lt=now)),
            reported=Exists(
                DevicePosition.objects.filter(
                    device__driver_id=OuterRef("driver_id"), received_at__gt=OuterRef("last_eta")
                )
            ),
        )
    )
    for route in active:
        if not route.has_open:
            continue
        if route.last_eta is None:
            yield route
            continue
        # Without news the windows still age: a stop's ETA must never fall behind the clock.
        stale = route.last_eta < now - timedelta(seconds=ETA_REFRESH_S) or route.behind_clock
        if stale or (route.reported and route.last_eta < trailing):
            yield route
