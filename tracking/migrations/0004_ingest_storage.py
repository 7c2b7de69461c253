"""Storage the ORM cannot declare: the day-partitioned pings table, the append-only custody
log, and the same-organization keys of the new tenant links."""

from django.db import migrations

from control_tower.tenancy.migration_ops import EnforceSameOrganization

PING_TABLE = """
CREATE TABLE tracking_ping (
    organization_id bigint NOT NULL,
    device_id bigint NOT NULL,
    fix_time timestamptz NOT NULL,
    event_id varchar(64) NOT NULL DEFAULT '',
    received_at timestamptz NOT NULL DEFAULT now(),
    location geometry(Point, 4326) NOT NULL,
    accuracy_m double precision,
    speed_mps double precision,
    heading_deg double precision,
    altitude_m double precision,
    battery_pct smallint,
    charging boolean,
    moving boolean,
    mock boolean NOT NULL DEFAULT false,
    source varchar(16) NOT NULL,
    flags integer NOT NULL DEFAULT 0,
    attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The idempotency key: a replayed fix hits it and is skipped (ON CONFLICT DO NOTHING).
    -- It starts with the partition key's column set as PostgreSQL requires, and serves the
    -- "track of a device between two times" query.
    PRIMARY KEY (organization_id, device_id, fix_time, event_id)
) PARTITION BY RANGE (fix_time);
-- No foreign keys on purpose: a per-row RI check would dominate bulk inserts, and the ingest
-- service takes organization and device together from the authenticated device row.
CREATE TABLE tracking_ping_default PARTITION OF tracking_ping DEFAULT;
"""

CUSTODY_APPEND_ONLY = """
CREATE FUNCTION tracking_custody_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Deleting a whole organization (tenant offboarding) is the one sanctioned way out.
    IF TG_OP = 'DELETE' AND current_setting('control_tower.purge_organization', true)
        = OLD.organization_id::text THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'chain of custody entries are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER tracking_custody_append_only
    BEFORE UPDATE OR DELETE ON tracking_custodyentry
    FOR EACH ROW EXECUTE FUNCTION tracking_custody_append_only();
-- TRUNCATE is left to the table owner (test teardown uses it); the application's role
-- should not own the table in production (docs/INGEST.md).
"""


def create_partitions(apps, schema_editor):
    from tracking.ingest.partitions import ensure_partitions

    ensure_partitions()


class Migration(migrations.Migration):
    dependencies = [("tracking", "0003_ingest")]

    operations = [
        migrations.RunSQL(PING_TABLE, "DROP TABLE tracking_ping CASCADE;"),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
        migrations.RunSQL(
            CUSTODY_APPEND_ONLY,
            "DROP TRIGGER tracking_custody_append_only ON tracking_custodyentry;"
            "DROP FUNCTION tracking_custody_append_only();",
        ),
        EnforceSameOrganization(["control_tower", "carriers", "tracking"]),
    ]
