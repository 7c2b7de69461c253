# ruff: noqa: S608 - the interpolated parts are constants of this module; values go as parameters
"""The SQL that turns one (organization, service day) of raw rows into facts and roll-ups.

Set-based on purpose: a day of a large organization is tens of thousands of stops, and the
benchmark rolls up 90 of them; row-by-row Python would be minutes. Every statement takes the
same named parameters (`day_params` in compute.py): org, day, start, end (the local day's
bounds as aware datetimes), tz, fresh_s, grid, reasons, edges. The definitions are written
out in docs/SLA_METRICS.md; comments here say why a rule is what it is.
"""

from __future__ import annotations

DELETE = [
    f"DELETE FROM sla_{table} WHERE organization_id = %(org)s AND day = %(day)s"
    for table in (
        "attemptfact",
        "deliveryfact",
        "stopfact",
        "routefact",
        "alertfact",
        "dailyrollup",
        "rollupcount",
    )
]

# The attempted delivery stop time: completion (or failure) is when the parcel changed hands.
_STOP_AT = "COALESCE(st.actual_departure, st.actual_arrival)"

ATTEMPTS = f"""
WITH day_stops AS (
    SELECT st.id
    FROM tracking_stop st
    JOIN tracking_route r ON r.id = st.route_id
    WHERE r.organization_id = %(org)s
      AND r.date BETWEEN %(day)s::date - 1 AND %(day)s::date + 1
      AND st.kind = 'delivery' AND st.status IN ('completed', 'failed')
      AND {_STOP_AT} >= %(start)s AND {_STOP_AT} < %(end)s
),
day_shipments AS (
    SELECT ss.shipment_id FROM tracking_stopshipment ss JOIN day_stops d ON d.id = ss.stop_id
    UNION
    SELECT sc.shipment_id FROM tracking_scan sc
    WHERE sc.organization_id = %(org)s AND sc.shipment_id IS NOT NULL
      AND sc.scan_type IN ('delivered', 'attempt_failed')
      AND sc.result IN ('applied', 'unchanged', 'recorded')
      AND sc.occurred_at >= %(start)s AND sc.occurred_at < %(end)s
),
stop_attempts AS (
    SELECT ss.shipment_id, st.id AS stop_id, st.route_id, 'stop' AS source,
           {_STOP_AT} AS at,
           CASE WHEN st.status = 'completed' THEN 'delivered' ELSE 'failed' END AS outcome,
           CASE WHEN st.status = 'failed' THEN COALESCE(NULLIF(st.failure_reason, ''), 'other')
                ELSE '' END AS reason,
           '' AS carrier_reason_code, st.id AS tiebreak
    FROM tracking_stopshipment ss
    JOIN tracking_stop st ON st.id = ss.stop_id
    WHERE ss.organization_id = %(org)s
      AND ss.shipment_id IN (SELECT shipment_id FROM day_shipments)
      AND st.kind = 'delivery' AND st.status IN ('completed', 'failed')
      AND {_STOP_AT} IS NOT NULL
),
-- A shipment attempted at a stop takes its attempts from its stops only: a stop failure also
-- moves the shipment (and the driver may scan it), so scans would count the attempt twice.
scan_attempts AS (
    SELECT sc.shipment_id, NULL::bigint AS stop_id, NULL::bigint AS route_id, 'scan' AS source,
           sc.occurred_at AS at,
           CASE WHEN sc.scan_type = 'delivered' THEN 'delivered' ELSE 'failed' END AS outcome,
           CASE WHEN sc.scan_type = 'delivered' THEN ''
                WHEN sc.reason_code = ANY(%(reasons)s) THEN sc.reason_code
                ELSE 'other' END AS reason,
           sc.carrier_reason_code, sc.id AS tiebreak
    FROM tracking_scan sc
    WHERE sc.organization_id = %(org)s
      AND sc.shipment_id IN (SELECT shipment_id FROM day_shipments)
      AND sc.shipment_id NOT IN (SELECT shipment_id FROM stop_attempts)
      AND sc.scan_type IN ('delivered', 'attempt_failed')
      AND sc.result IN ('applied', 'unchanged', 'recorded')
),
ordered AS (
    SELECT a.*,
           COUNT(*) FILTER (WHERE a.outcome = 'delivered') OVER (
               PARTITION BY a.shipment_id ORDER BY a.at, a.tiebreak
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
           ) AS deliveries_before
    FROM (SELECT * FROM stop_attempts UNION ALL SELECT * FROM scan_attempts) a
),
numbered AS (
    -- Nothing after the first delivery is an attempt (a repeated "delivered" scan, a stray
    -- stop): the shipment was already handed over.
    SELECT o.*, ROW_NUMBER() OVER (PARTITION BY o.shipment_id ORDER BY o.at, o.tiebreak) AS n
    FROM ordered o WHERE o.deliveries_before = 0
)
INSERT INTO sla_attemptfact (
    organization_id, day, carrier_id, hub_id, region, driver_id, service_type,
    shipment_id, stop_id, route_id, source, occurred_at, attempt_number, outcome, reason,
    carrier_reason_code)
SELECT %(org)s, %(day)s, COALESCE(r.carrier_id, sh.carrier_id), COALESCE(r.hub_id, sh.hub_id),
       COALESCE(h.region, ''), r.driver_id, sh.service_type,
       n.shipment_id, n.stop_id, n.route_id, n.source, n.at, n.n, n.outcome, n.reason,
       n.carrier_reason_code
FROM numbered n
JOIN tracking_shipment sh ON sh.id = n.shipment_id
LEFT JOIN tracking_route r ON r.id = n.route_id
LEFT JOIN tracking_hub h ON h.id = COALESCE(r.hub_id, sh.hub_id)
WHERE n.at >= %(start)s AND n.at < %(end)s
"""

DELIVERIES = """
INSERT INTO sla_deliveryfact (
    organization_id, day, carrier_id, hub_id, region, driver_id, service_type,
    shipment_id, stop_id, route_id, source, delivered_at, attempt_number,
    window_start, window_end, punctuality, lateness_min,
    pod_ok, pod_problem, scan_ok, scan_problem, rating)
SELECT a.organization_id, a.day, a.carrier_id, a.hub_id, a.region, a.driver_id,
       a.service_type, a.shipment_id, a.stop_id, a.route_id, a.source, a.occurred_at,
       a.attempt_number, sh.promised_window_start, sh.promised_window_end,
       p.punctuality,
       CASE WHEN p.punctuality = 'late'
            THEN EXTRACT(EPOCH FROM a.occurred_at - sh.promised_window_end) / 60.0 END,
       CASE WHEN c.id IS NULL OR NOT c.sla_pod_required THEN NULL
            ELSE pod.id IS NOT NULL
                 AND (NOT c.sla_pod_photo_required OR pod.has_photo)
                 AND (NOT c.sla_pod_signature_required OR pod.has_signature)
                 AND (NOT c.sla_pod_geofence_required OR NOT pod.outside_geofence) END,
       CASE WHEN c.id IS NULL OR NOT c.sla_pod_required THEN ''
            WHEN pod.id IS NULL THEN 'no_pod'
            ELSE concat_ws(',',
                CASE WHEN c.sla_pod_photo_required AND NOT pod.has_photo THEN 'photo' END,
                CASE WHEN c.sla_pod_signature_required AND NOT pod.has_signature
                     THEN 'signature' END,
                CASE WHEN c.sla_pod_geofence_required AND pod.outside_geofence
                     THEN 'geofence' END) END,
       CASE WHEN c.id IS NULL OR cardinality(c.sla_required_scans) = 0 THEN NULL
            ELSE c.sla_required_scans <@ COALESCE(scans.types, '{}')
                 AND scans.sequence ~ ('(^|,)' || array_to_string(c.sla_required_scans,
                                                                  ',(.*,)?') || '(,|$)') END,
       CASE WHEN c.id IS NULL OR cardinality(c.sla_required_scans) = 0 THEN ''
            WHEN NOT c.sla_required_scans <@ COALESCE(scans.types, '{}') THEN 'missing'
            WHEN NOT scans.sequence ~ ('(^|,)' || array_to_string(c.sla_required_scans,
                                                                  ',(.*,)?') || '(,|$)')
            THEN 'order' ELSE '' END,
       dr.stars
FROM sla_attemptfact a
JOIN tracking_shipment sh ON sh.id = a.shipment_id
LEFT JOIN carriers_carrier c ON c.id = a.carrier_id
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN sh.promised_window_end IS NULL THEN ''
        WHEN sh.promised_window_start IS NOT NULL AND a.occurred_at < sh.promised_window_start
            THEN 'early'
        WHEN a.occurred_at <= sh.promised_window_end
                              + make_interval(mins => COALESCE(c.sla_grace_minutes, 0))
            THEN 'on_time'
        ELSE 'late' END AS punctuality
) p
-- The proof judged is the latest one captured for the shipment.
LEFT JOIN LATERAL (
    SELECT pd.id, pd.outside_geofence,
           EXISTS (SELECT 1 FROM tracking_podfile f WHERE f.pod_id = pd.id AND f.kind = 'photo')
               AS has_photo,
           EXISTS (SELECT 1 FROM tracking_podfile f
                   WHERE f.pod_id = pd.id AND f.kind = 'signature') AS has_signature
    FROM tracking_proofofdelivery pd
    WHERE pd.organization_id = a.organization_id AND pd.shipment_id = a.shipment_id
      AND pd.outcome = 'delivered'
    ORDER BY pd.captured_at DESC, pd.id DESC LIMIT 1
) pod ON TRUE
LEFT JOIN LATERAL (
    SELECT array_agg(DISTINCT sc.scan_type)::varchar[] AS types,
           string_agg(sc.scan_type, ',' ORDER BY sc.occurred_at, sc.id) AS sequence
    FROM tracking_scan sc
    WHERE sc.organization_id = a.organization_id AND sc.shipment_id = a.shipment_id
      AND sc.result <> 'unknown_barcode'
) scans ON TRUE
LEFT JOIN tracking_deliveryrating dr ON dr.shipment_id = a.shipment_id
WHERE a.organization_id = %(org)s AND a.day = %(day)s AND a.outcome = 'delivered'
"""

STOPS = """
WITH visited AS (
    SELECT st.*, r.carrier_id, r.hub_id, r.driver_id, r.started_at AS route_started_at,
           LAG(st.actual_departure) OVER w AS previous_departure,
           LAG(st.sequence) OVER w AS previous_sequence
    FROM tracking_stop st
    JOIN tracking_route r ON r.id = st.route_id
    WHERE r.organization_id = %(org)s AND r.date = %(day)s
      AND st.status IN ('completed', 'failed') AND st.actual_arrival IS NOT NULL
    WINDOW w AS (PARTITION BY st.route_id ORDER BY st.actual_arrival, st.sequence)
)
INSERT INTO sla_stopfact (
    organization_id, day, carrier_id, hub_id, region, driver_id, service_type,
    stop_id, route_id, sequence, status, parcels, actual_arrival, planned_arrival,
    dwell_s, transit_s, eta_error_min, eta_window_hit, in_sequence, plan_deviation_min,
    hour, cell, address)
SELECT %(org)s, %(day)s, v.carrier_id, v.hub_id, COALESCE(h.region, ''), v.driver_id,
       COALESCE(ship.service_type, ''), v.id, v.route_id, v.sequence, v.status,
       COALESCE(ship.parcels, 0), v.actual_arrival, v.planned_arrival,
       EXTRACT(EPOCH FROM v.actual_departure - v.actual_arrival),
       EXTRACT(EPOCH FROM v.actual_arrival - COALESCE(v.previous_departure, v.route_started_at)),
       eta.error_min, eta.window_hit,
       CASE WHEN v.previous_sequence IS NULL THEN NULL
            ELSE v.sequence > v.previous_sequence END,
       ABS(EXTRACT(EPOCH FROM v.actual_arrival - v.planned_arrival)) / 60.0,
       EXTRACT(HOUR FROM v.actual_arrival AT TIME ZONE %(tz)s),
       (ROUND(ST_Y(v.location)::numeric / %(grid)s) * %(grid)s)::numeric(9, 4)::text || ':' ||
       (ROUND(ST_X(v.location)::numeric / %(grid)s) * %(grid)s)::numeric(9, 4)::text,
       v.address
FROM visited v
LEFT JOIN tracking_hub h ON h.id = v.hub_id
LEFT JOIN LATERAL (
    SELECT MIN(sh.service_type) AS service_type, SUM(sh.parcel_count) AS parcels
    FROM tracking_stopshipment ss JOIN tracking_shipment sh ON sh.id = ss.shipment_id
    WHERE ss.stop_id = v.id
) ship ON TRUE
-- ETA accuracy: only what was shown before the driver arrived.
LEFT JOIN LATERAL (
    SELECT AVG(ABS(EXTRACT(EPOCH FROM v.actual_arrival - e.eta))) / 60.0 AS error_min,
           (ARRAY_AGG(v.actual_arrival BETWEEN e.earliest AND e.latest
                      ORDER BY e.computed_at DESC, e.id DESC))[1] AS window_hit
    FROM tracking_etarevision e
    WHERE e.organization_id = %(org)s AND e.stop_id = v.id
      AND e.computed_at < v.actual_arrival
) eta ON TRUE
"""

# Tracking coverage: the minute marks started_at + k min (k = 0 .. span - 1) each covered if
# an unflagged fix of the route's vehicle's or driver's device is at most `fresh_s` older.
# A fix at t covers the marks in [t, t + fresh]; the pings read are one day's partition.
ROUTES = """
WITH day_routes AS (
    SELECT r.*, CEIL(EXTRACT(EPOCH FROM r.completed_at - r.started_at) / 60.0)::int AS span
    FROM tracking_route r
    WHERE r.organization_id = %(org)s AND r.date = %(day)s AND r.status = 'completed'
      AND r.started_at IS NOT NULL AND r.completed_at IS NOT NULL
      AND r.completed_at > r.started_at
),
coverage AS (
    SELECT dr.id AS route_id, COUNT(DISTINCT k) AS covered
    FROM day_routes dr
    JOIN carriers_device d ON d.organization_id = %(org)s
         AND ((dr.vehicle_id IS NOT NULL AND d.vehicle_id = dr.vehicle_id)
              OR (dr.driver_id IS NOT NULL AND d.driver_id = dr.driver_id))
    JOIN tracking_ping p ON p.organization_id = %(org)s AND p.device_id = d.id
         AND p.flags = 0
         AND p.fix_time >= dr.started_at - make_interval(secs => %(fresh_s)s)
         AND p.fix_time < dr.completed_at
         AND p.fix_time >= %(start)s - interval '1 day' AND p.fix_time < %(end)s + interval '1 day'
    CROSS JOIN LATERAL generate_series(
        GREATEST(0, CEIL(EXTRACT(EPOCH FROM p.fix_time - dr.started_at) / 60.0))::int,
        LEAST(dr.span - 1,
              FLOOR((EXTRACT(EPOCH FROM p.fix_time - dr.started_at) + %(fresh_s)s) / 60.0)::int)
    ) k
    GROUP BY dr.id
),
visited AS (
    SELECT route_id, COUNT(*) AS stops, SUM(parcels) AS parcels
    FROM sla_stopfact WHERE organization_id = %(org)s AND day = %(day)s GROUP BY route_id
)
INSERT INTO sla_routefact (
    organization_id, day, carrier_id, hub_id, region, driver_id, service_type, route_id,
    started_at, completed_at, road_s, stops, parcels, distance_m, span_min, covered_min,
    coverage_pct)
SELECT %(org)s, %(day)s, dr.carrier_id, dr.hub_id, COALESCE(h.region, ''), dr.driver_id, '',
       dr.id, dr.started_at, dr.completed_at,
       EXTRACT(EPOCH FROM dr.completed_at - dr.started_at),
       COALESCE(v.stops, 0), COALESCE(v.parcels, 0), dr.planned_distance_m, dr.span,
       COALESCE(c.covered, 0), 100.0 * COALESCE(c.covered, 0) / dr.span
FROM day_routes dr
LEFT JOIN tracking_hub h ON h.id = dr.hub_id
LEFT JOIN coverage c ON c.route_id = dr.id
LEFT JOIN visited v ON v.route_id = dr.id
"""

ALERTS = """
INSERT INTO sla_alertfact (
    organization_id, day, carrier_id, hub_id, region, driver_id, service_type,
    alert_id, route_id, stop_id, shipment_id, kind, started_at)
SELECT %(org)s, %(day)s, COALESCE(al.carrier_id, r.carrier_id), COALESCE(r.hub_id, sh.hub_id),
       COALESCE(h.region, ''), r.driver_id, COALESCE(sh.service_type, ''),
       al.id, al.route_id, al.stop_id, al.shipment_id, al.kind, al.started_at
FROM exceptions_alert al
LEFT JOIN tracking_route r ON r.id = al.route_id
LEFT JOIN tracking_shipment sh ON sh.id = al.shipment_id
LEFT JOIN tracking_hub h ON h.id = COALESCE(r.hub_id, sh.hub_id)
WHERE al.organization_id = %(org)s AND al.started_at >= %(start)s AND al.started_at < %(end)s
"""

_DIMS = "day, carrier_id, hub_id, region, driver_id, service_type"
_FACT_WHERE = "WHERE organization_id = %(org)s AND day = %(day)s"


def _rollup_sql() -> str:
    from carriers.sla.models.rollups import COUNTERS

    def select(table: str, values: dict[str, str]) -> str:
        columns = ", ".join(f"{values.get(name, '0')} AS {name}" for name in COUNTERS)
        return f"SELECT {_DIMS}, {columns} FROM sla_{table} {_FACT_WHERE}"

    parts = [
        select(
            "deliveryfact",
            {
                "deliveries": "1",
                "judged": "(punctuality <> '')::int",
                "on_time": "(punctuality = 'on_time')::int",
                "early": "(punctuality = 'early')::int",
                "late": "(punctuality = 'late')::int",
                "lateness_sum_min": "COALESCE(lateness_min, 0)",
                "pod_judged": "(pod_ok IS NOT NULL)::int",
                "pod_ok": "COALESCE(pod_ok, FALSE)::int",
                "scan_judged": "(scan_ok IS NOT NULL)::int",
                "scan_ok": "COALESCE(scan_ok, FALSE)::int",
                "rating_n": "(rating IS NOT NULL)::int",
                "rating_sum": "COALESCE(rating, 0)",
            },
        ),
        select(
            "attemptfact",
            {
                "first_attempts": "(attempt_number = 1)::int",
                "first_attempt_success": "(attempt_number = 1 AND outcome = 'delivered')::int",
                "failed_attempts": "(outcome = 'failed')::int",
            },
        ),
        select(
            "stopfact",
            {
                "stops": "1",
                "eta_n": "(eta_error_min IS NOT NULL)::int",
                "eta_error_sum_min": "COALESCE(eta_error_min, 0)",
                "eta_window_n": "(eta_window_hit IS NOT NULL)::int",
                "eta_window_hit": "COALESCE(eta_window_hit, FALSE)::int",
                "seq_pairs": "(in_sequence IS NOT NULL)::int",
                "seq_in_order": "COALESCE(in_sequence, FALSE)::int",
                "plan_dev_n": "(plan_deviation_min IS NOT NULL)::int",
                "plan_dev_sum_min": "COALESCE(plan_deviation_min, 0)",
            },
        ),
        select(
            "routefact",
            {
                "routes": "1",
                "road_s": "road_s",
                "route_stops": "stops",
                "route_parcels": "parcels",
                "distance_m": "COALESCE(distance_m, 0)",
                "distance_stops": "CASE WHEN distance_m IS NULL THEN 0 ELSE stops END",
                "span_min": "span_min",
                "covered_min": "covered_min",
            },
        ),
        select("alertfact", {"alerts": "1"}),
    ]
    sums = ", ".join(f"SUM({name})" for name in COUNTERS)
    return (
        f"INSERT INTO sla_dailyrollup (organization_id, {_DIMS}, {', '.join(COUNTERS)}) "
        f"SELECT %(org)s, {_DIMS}, {sums} FROM ({' UNION ALL '.join(parts)}) facts "
        f"GROUP BY {_DIMS}"
    )


def _counts_sql() -> str:
    insert = f"INSERT INTO sla_rollupcount (organization_id, {_DIMS}, family, code, n) "
    return insert + (
        f"SELECT %(org)s, {_DIMS}, family, code, COUNT(*) FROM ("
        f"SELECT {_DIMS}, 'failure' AS family, reason AS code FROM sla_attemptfact "
        f"{_FACT_WHERE} AND outcome = 'failed' "
        f"UNION ALL SELECT {_DIMS}, 'alert', kind FROM sla_alertfact {_FACT_WHERE} "
        # The bucket's code: the smallest edge at or above the lateness (buckets.py).
        f"UNION ALL SELECT {_DIMS}, 'lateness', COALESCE((SELECT MIN(e) FROM "
        f"unnest(%(edges)s::float8[]) e WHERE e >= lateness_min), %(open_bucket)s)::int::text "
        f"FROM sla_deliveryfact {_FACT_WHERE} AND punctuality = 'late'"
        f") c GROUP BY {_DIMS}, family, code"
    )


ROLLUP = _rollup_sql()
COUNTS = _counts_sql()
