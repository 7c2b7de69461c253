"""The backup restores (issue 18, "Backup and restore"): `manage.py restore_drill` dumps the test
database with pg_dump, restores it into a fresh database with pg_restore, and checks the copy:
the same rows, the same custody hashes, and every chain verifying there. A chain altered in the
source (past the append-only trigger) fails the drill, so the check bites."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tests.tracking.test_custody import (  # noqa: F401 (fixtures)
    delivered,
    dispatcher,
    parcel,
    tamper,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_backup_restores_and_its_custody_verifies(delivered, tmp_path):  # noqa: F811
    out = StringIO()
    call_command("restore_drill", "--dump", str(tmp_path / "backup.dump"), stdout=out)
    report = out.getvalue()
    assert "tracking_custodyentry: 8 rows, the same in the copy" in report
    assert "restore drill passed: 1 chains of custody verified in the restored copy" in report
    assert (tmp_path / "backup.dump").stat().st_size > 0
    with connection.cursor() as cursor:  # the drill database is gone again
        cursor.execute("SELECT count(*) FROM pg_database WHERE datname LIKE '%_restore_drill'")
        assert cursor.fetchone()[0] == 0


def test_an_altered_chain_fails_the_drill(delivered, tmp_path):  # noqa: F811
    tamper(delivered, 3)
    with pytest.raises(CommandError, match="does not verify in the restored copy"):
        call_command("restore_drill", "--dump", str(tmp_path / "backup.dump"), stdout=StringIO())
