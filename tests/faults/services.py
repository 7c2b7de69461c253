"""Private PostgreSQL and Redis servers, and the platform's own processes, for fault injection.

The fault tests stop, crash and restart the database and Redis under load. They do it to
servers of their own (a PostgreSQL cluster made with `initdb` in a temporary directory, a
`redis-server` on a free port), never to the machine's shared services, which the rest of the
suite, a running demo or another checkout may be using. Same binaries, same versions, same
extensions (PostGIS, pgRouting) as production: only the data directory is theirs.

The platform runs as it does in production, as separate processes started here: uvicorn
serving control_tower.asgi:application, a Celery worker; their environment points them at the
private servers (`PlatformEnv`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import redis

from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL's server tools refuse to run as root: run them as the `postgres` user."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


class PrivatePostgres:
    """A PostgreSQL 15 cluster of its own: `start`, `crash` (immediate shutdown: no checkpoint,
    crash recovery at the next start, as after a power cut or a killed postmaster), `stop`."""

    def __init__(self, base: Path):
        self.dir = base / "pgdata"
        self.port = free_port()
        self.log = base / "postgres.log"

    def init(self) -> None:
        base = self.dir.parent
        base.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(base, "postgres", "postgres")
        _as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-sync"]
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        _as_postgres(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-l", str(self.log), "-o", options,
             "-w", "-t", "60", "start"]
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.dir), "-m", mode, "-w", "stop"])

    def crash(self) -> None:
        self.stop("immediate")

    def answers(self) -> bool:
        try:
            with self.connect("postgres"):
                return True
        except psycopg.OperationalError:
            return False

    def url(self, dbname: str) -> str:
        return f"postgis://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str) -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )

    def create_database(self, name: str) -> None:
        with self.connect("postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.dir.parent, ignore_errors=True)


class PrivateRedis:
    """A redis-server of its own, in memory only like the machine's: `start`, `kill`."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.answers, timeout=10, what="redis-server started")

    def kill(self) -> None:
        """SIGKILL: gone at once, with everything it held (the queue, the channel layer)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_timeout=2)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


class PlatformEnv:
    """The environment of the platform's processes: production settings (DEBUG off, so the
    error handlers answer as they do for real), pointed at the private servers."""

    def __init__(self, postgres: PrivatePostgres, dbname: str, redis_server: PrivateRedis, **extra):
        self.values = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))},
            "DJANGO_SETTINGS_MODULE": "control_tower.settings",
            "PYTHONPATH": str(ROOT),
            "DEBUG": "0",
            "SECRET_KEY": "fault-tests-only-0123456789abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": postgres.url(dbname),
            "REDIS_URL": redis_server.url(0),
            "CELERY_BROKER_URL": redis_server.url(0),
            "CELERY_TASK_DEFAULT_QUEUE": "celery",
            "CACHE_KEY_PREFIX": "faults",
            "CHANNEL_LAYER_PREFIX": "faults:asgi",
            "RATELIMIT_KEY_PREFIX": "faults",
            "AUTH_FAILURES_PER_IP": "0",
            "FAST_PASSWORD_HASHER": "1",
            "LOG_LEVEL": "WARNING",
            **{k: str(v) for k, v in extra.items()},
        }

    def run_python(self, module: str, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=ROOT, env=self.values, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"{module} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        return done.stdout


class Process:
    """One of the platform's processes, in its own process group (a Celery worker's pool
    children die with it), its output in a log file for the failure message."""

    def __init__(self, name: str, args: list[str], env: PlatformEnv, log_dir: Path):
        self.name = name
        self.log = log_dir / f"{name}.log"
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env.values, stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def alive(self) -> bool:
        """True while it runs; raises with its last lines once it has exited (a crash at
        start-up is reported at once, with its traceback, not as a time-out)."""
        if self.popen.poll() is None:
            return True
        raise AssertionError(f"{self.name} exited ({self.popen.returncode}):\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL to the whole group: no shutdown handler runs, nothing is acknowledged."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def web(env: PlatformEnv, log_dir: Path, port: int) -> Process:
    process = Process(
        f"web-{port}",
        [str(VENV_BIN / "uvicorn"), "control_tower.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"],
        env, log_dir,
    )  # fmt: skip
    wait_for(lambda: process.alive() and _listening(port), timeout=60, what="uvicorn listening")
    return process


def worker(env: PlatformEnv, log_dir: Path, name: str = "worker") -> Process:
    """A Celery worker as production runs it (prefork pool), one child process."""
    return Process(
        name,
        [str(VENV_BIN / "celery"), "-A", "control_tower", "worker", "--loglevel", "WARNING",
         "--concurrency", "1", "--without-gossip", "--without-mingle", "-n", f"{name}@%h"],
        env, log_dir,
    )  # fmt: skip


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
