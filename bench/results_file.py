"""What every benchmark does with its figures: add the machine, write bench/results/<name>.json
(flat keys, unit in the key name), print them."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_results(name: str, results: dict) -> Path:
    results = {
        **results,
        "machine_cpus": os.cpu_count(),
        "machine": f"{platform.node()} {platform.machine()} Python {platform.python_version()}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    width = max(len(key) for key in results) + 2
    for key, value in results.items():
        print(f"{key:{width}} {value}")
    print(f"written to bench/results/{path.name}")
    return path
