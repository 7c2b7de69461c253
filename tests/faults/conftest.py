"""Fixtures of the fault tests: private servers for the whole session, a fresh database per
test (a copy of one migrated template), and the platform's processes (tests/faults/services.py).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.faults.services import (
    PlatformEnv,
    PrivatePostgres,
    PrivateRedis,
)

TEMPLATE = "faults_template"


class Servers:
    def __init__(self, base: Path):
        self.base = base
        self.postgres = PrivatePostgres(base)
        self.redis = PrivateRedis()
        self.count = 0


@pytest.fixture(scope="session")
def fault_servers():
    """One PostgreSQL cluster (with a migrated template database) and one Redis, private to
    the fault tests, for the session; removed at the end."""
    base = Path(tempfile.mkdtemp(prefix="ct-faults-"))
    servers = Servers(base)
    servers.postgres.init()
    servers.redis.start()
    try:
        servers.postgres.create_database(TEMPLATE)
        PlatformEnv(servers.postgres, TEMPLATE, servers.redis).run_python(
            "django", "migrate", "--no-input", "-v", "0"
        )
        yield servers
    finally:
        servers.redis.kill()
        servers.postgres.destroy()
        shutil.rmtree(base, ignore_errors=True)


class Scenario:
    """One test's database (a copy of the template), its environment, its processes."""

    def __init__(self, servers: Servers, dbname: str, log_dir: Path, **settings):
        self.servers = servers
        self.postgres = servers.postgres
        self.redis = servers.redis
        self.dbname = dbname
        self.log_dir = log_dir
        self.env = PlatformEnv(servers.postgres, dbname, servers.redis, **settings)
        self.processes = []

    def world(self, *args: str) -> dict:
        return json.loads(self.env.run_python("tests.faults.world", *args).strip().splitlines()[-1])

    def started(self, process):
        self.processes.append(process)
        return process

    def sql(self, query: str, params=None) -> list[tuple]:
        with self.postgres.connect(self.dbname) as conn:
            return conn.execute(query, params).fetchall()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)


@pytest.fixture
def scenario(fault_servers, tmp_path):
    """Make a scenario with `scenario(**settings)`: the settings go to every process's
    environment. Its processes are stopped afterwards, and the servers left running."""
    made: list[Scenario] = []

    def make(**settings) -> Scenario:
        fault_servers.count += 1
        name = f"faults_{fault_servers.count}"
        # A test that failed half-way may have left a server down.
        if not fault_servers.postgres.answers():
            fault_servers.postgres.start()
        if not fault_servers.redis.answers():
            fault_servers.redis.start()
        fault_servers.redis.client().flushall()
        with fault_servers.postgres.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        made.append(Scenario(fault_servers, name, tmp_path, **settings))
        return made[-1]

    yield make
    for each in made:
        for process in each.processes:
            process.kill()
        if not each.redis.answers():
            each.redis.start()
