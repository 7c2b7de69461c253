"""`manage.py restore_drill [--keep] [--dump PATH]`: prove the backups restore.

Backs the database up with `pg_dump --format=custom` (what docs/RELIABILITY.md tells operators
to run nightly), restores the file into a fresh database `<name>_restore_drill` with
`pg_restore`, then checks the copy: the row counts of the tables that matter are the same, the
custody hashes are identical (one digest over every entry's hash), and every chain of custody of
every organization verifies *in the restored database* (`manage.py verify_custody` run against
it). The drill database is dropped afterwards unless `--keep`. Exits non-zero on any difference.

Uses the connection of settings.DATABASES["default"] (so, in the test suite, the test database)
and the PostgreSQL client tools of the machine (`pg_dump`, `pg_restore`, `createdb`, `dropdb`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

# What must survive a restore, counted in both databases.
COUNTED_TABLES = (
    "control_tower_organization",
    "tracking_shipment",
    "tracking_route",
    "tracking_stop",
    "tracking_scan",
    "tracking_proofofdelivery",
    "tracking_podfile",
    "tracking_custodyentry",
    "tracking_ping",
    "control_tower_outboxevent",
)
CUSTODY_DIGEST = (
    "SELECT md5(coalesce(string_agg(hash, ',' ORDER BY id), '')) FROM tracking_custodyentry"
)
VERIFIED = re.compile(r"(\d+) chains of custody verified")


def _connection(name: str | None = None) -> dict:
    db = settings.DATABASES["default"]
    return {
        "dbname": name or db["NAME"],
        "user": db.get("USER") or "postgres",
        "password": db.get("PASSWORD") or "",
        "host": db.get("HOST") or "127.0.0.1",
        "port": str(db.get("PORT") or 5432),
    }


def _client_env(conn: dict) -> dict:
    """The libpq environment of the client tools (no password on a command line)."""
    env = {**os.environ, "PGHOST": conn["host"], "PGPORT": conn["port"], "PGUSER": conn["user"]}
    if conn["password"]:
        env["PGPASSWORD"] = conn["password"]
    return env


def _run(args: list[str], conn: dict) -> None:
    # The PostgreSQL client tools with arguments this command builds (no shell, no user input).
    done = subprocess.run(args, env=_client_env(conn), capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise CommandError(f"{args[0]} failed: {done.stderr.strip()[-2000:]}")


def _facts(conn: dict) -> tuple[dict[str, int], str, list[str]]:
    with psycopg.connect(**conn) as db, db.cursor() as cursor:
        counts = {}
        for table in COUNTED_TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (a fixed table name)
            counts[table] = cursor.fetchone()[0]
        cursor.execute(CUSTODY_DIGEST)
        digest = cursor.fetchone()[0]
        cursor.execute("SELECT slug FROM control_tower_organization ORDER BY slug")
        slugs = [row[0] for row in cursor.fetchall()]
    return counts, digest, slugs


def _verify_chains(conn: dict, slugs: list[str]) -> int:
    """Every organization's chains, verified by the platform's own command in the copy."""
    url = (
        f"postgis://{conn['user']}:{conn['password']}@{conn['host']}:{conn['port']}/"
        f"{conn['dbname']}"
    )
    verified = 0
    for slug in slugs:
        done = subprocess.run(  # noqa: S603 (this interpreter, this project's own command)
            [sys.executable, "manage.py", "verify_custody", "--org", slug, "--all"],
            cwd=settings.BASE_DIR,
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
        )
        found = VERIFIED.search(done.stdout)
        if done.returncode != 0 or found is None:
            raise CommandError(
                f"custody of {slug} does not verify in the restored copy: "
                f"{(done.stdout + done.stderr).strip()[-2000:]}"
            )
        verified += int(found.group(1))
    return verified


class Command(BaseCommand):
    help = "Back the database up, restore it into a fresh one and verify the copy."

    def add_arguments(self, parser):
        parser.add_argument("--keep", action="store_true", help="Keep the drill database.")
        parser.add_argument(
            "--dump", help="Where the backup goes (default: var/backups/<name>-<time>.dump)."
        )

    def handle(self, *args, **options):
        source = _connection()
        drill = _connection(f"{source['dbname']}_restore_drill")
        dump = Path(
            options["dump"]
            or settings.BASE_DIR / "var" / "backups" / f"{source['dbname']}-{int(time.time())}.dump"
        )
        dump.parent.mkdir(parents=True, exist_ok=True)

        started = time.monotonic()
        _run(["pg_dump", "--format=custom", f"--file={dump}", source["dbname"]], source)
        dumped_s = time.monotonic() - started
        _run(["dropdb", "--if-exists", drill["dbname"]], source)
        _run(["createdb", drill["dbname"]], source)
        started = time.monotonic()
        try:
            _run(
                ["pg_restore", "--exit-on-error", "--no-owner", f"--dbname={drill['dbname']}"]
                + [str(dump)],
                source,
            )
            restored_s = time.monotonic() - started
            counts, digest, slugs = _facts(source)
            copied, copied_digest, _ = _facts(drill)
            differences = {t: (counts[t], copied[t]) for t in counts if counts[t] != copied[t]}
            if differences or digest != copied_digest:
                raise CommandError(
                    f"the restored copy differs: counts {differences}, custody digest "
                    f"{digest} vs {copied_digest}"
                )
            chains = _verify_chains(drill, slugs)
        finally:
            if not options["keep"]:
                _run(["dropdb", "--if-exists", drill["dbname"]], source)
        self.stdout.write(
            f"backup {dump} ({dump.stat().st_size / 1e6:.1f} MB) in {dumped_s:.1f} s; "
            f"restored into {drill['dbname']} in {restored_s:.1f} s"
        )
        for table, count in counts.items():
            self.stdout.write(f"  {table}: {count} rows, the same in the copy")
        self.stdout.write(
            self.style.SUCCESS(
                f"restore drill passed: {chains} chains of custody verified in the restored "
                f"copy ({len(slugs)} organizations), custody digest {digest}"
            )
        )
