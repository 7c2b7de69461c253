"""The platform as production runs it, for bench/soak.py: uvicorn (ASGI) with its workers, a
Celery worker and Celery beat, as subprocesses of the benchmark, always stopped by it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.ingest import start_server
from bench.soak_watch import cmdline, label_processes

ROOT = Path(__file__).resolve().parents[1]
LOG_DIR = ROOT / "var" / "log"


@contextlib.contextmanager
def output_to(path: Path):
    """Point this process's stdout and stderr at `path` while a child is started, so that the
    child (uvicorn, started by bench/ingest.py's start_server) logs to the file, not the table."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


class Platform:
    """The processes of the platform, started and (always) stopped by this script. Their logs
    go to var/log/soak_{web,worker,beat}.log; the lines of this run saying ERROR count."""

    def __init__(self, args) -> None:
        self.args = args
        self.web: subprocess.Popen | None = None
        self.celery: list[tuple[str, subprocess.Popen]] = []
        self.seen_pids: dict[int, str] = {}
        self.beat_dir = tempfile.TemporaryDirectory(prefix="soak-beat-")
        self.logs = {name: LOG_DIR / f"soak_{name}.log" for name in ("web", "worker", "beat")}
        self.log_from: dict[str, int] = {}

    def start(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        for name, path in self.logs.items():
            self.log_from[name] = path.stat().st_size if path.exists() else 0
        overrides = {"DEBUG": "0", "ETA_DEBOUNCE_S": str(self.args.eta_debounce_s)}
        with output_to(self.logs["web"]):
            self.web = start_server(self.args, env=overrides)
        env = {**os.environ, "LOG_LEVEL": "WARNING", **overrides}
        celery = [sys.executable, "-m", "celery", "-A", "control_tower"]
        commands = {
            "celery": [
                *celery,
                "worker",
                "-l",
                "warning",
                "--concurrency",
                str(self.args.concurrency),
                # A node name of its own: other workers on the same Redis keep theirs.
                "-n",
                f"soak-{os.getpid()}@%h",
            ],
            "beat": [
                *celery,
                "beat",
                "-l",
                "warning",
                "--schedule",
                str(Path(self.beat_dir.name) / "schedule"),
            ],
        }
        for role, command in commands.items():
            with self.logs["worker" if role == "celery" else role].open("ab") as log:
                # A session of its own: a Ctrl-C in the terminal reaches only this script,
                # which stops the platform in order.
                process = subprocess.Popen(  # noqa: S603
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.celery.append((role, process))
        self.wait_for_children()

    def wait_for_children(self, timeout_s: float = 90) -> None:
        """Until uvicorn's workers and Celery's children are all there (spawning takes seconds
        on a busy machine): the first sample must see every process."""
        expected = {f"web_worker_{self.args.workers}", f"celery_child_{self.args.concurrency}"}
        deadline = time.monotonic() + timeout_s
        while not expected <= set(self.processes()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the platform did not start: {self.processes()}")
            time.sleep(1)
        time.sleep(2)  # the children's imports

    def processes(self) -> dict[str, int]:
        roots = {"web": self.web.pid} if self.web else {}
        roots.update({role: process.pid for role, process in self.celery})
        labelled = label_processes(roots)
        self.seen_pids.update({pid: cmdline(pid) for pid in labelled.values()})
        return labelled

    def log_errors(self) -> list[str]:
        """Lines of this run's logs that report an error, each prefixed with its log's name."""
        found = []
        for name, path in self.logs.items():
            if not path.exists():
                continue
            with path.open("rb") as log:
                log.seek(self.log_from.get(name, 0))
                lines = log.read().decode(errors="replace").splitlines()
            found += [
                f"{name}: {line}" for line in lines if " ERROR " in line or "CRITICAL" in line
            ]
        return found

    def stop(self) -> None:
        """Warm shutdown: SIGTERM to each master (Celery's finishes the tasks at hand, uvicorn
        stops its workers), SIGKILL to the group after 30 s."""
        processes = [p for p in [self.web, *(p for _r, p in self.celery)] if p is not None]
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.kill()
                process.wait()
        # A child its master left behind: ours if it still runs the command we saw it run (a
        # pid alone could have been reused by now).
        for pid, line in self.seen_pids.items():
            if cmdline(pid) == line:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.beat_dir.cleanup()
