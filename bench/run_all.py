"""`make bench`: run every benchmark in bench/ (each prints its figures and writes
bench/results/<name>.json); see docs/PERFORMANCE.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = [
    "ingest.py",
    "roads.py",
    "planning.py",
    "planning_compare.py",
    "simulator.py",
    "eta.py",
    "eta_latency.py",
    "console_live.py",
    "realtime_layer.py",
    "console_page.py",
    "notifications_smtp.py",
    "webhooks.py",
]

if __name__ == "__main__":
    failed = [
        name
        for name in SCRIPTS
        if subprocess.call([sys.executable, str(BENCH / name), *sys.argv[1:]]) != 0  # noqa: S603
    ]
    sys.exit(f"failed: {', '.join(failed)}" if failed else 0)
