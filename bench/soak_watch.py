"""What bench/soak.py watches and how it judges it: the processes it started (found through
/proc, since psutil is not in the virtualenv), their resident memory, and the verdict on a run's
samples. No Django here: the verdict is plain arithmetic on the sample rows."""

from __future__ import annotations

from pathlib import Path

MB = 1024.0  # /proc reports kB

# The criteria of issue 18, in one place.
MAX_RSS_GROWTH_PCT = 10.0
# A queue "grows" when, over the second half of the run, its least-squares slope is above this
# many items a minute AND it ends above QUEUE_FLOOR: a queue that breathes between 0 and a few
# dozen tasks as beat fires is bounded, however its slope happens to tilt.
QUEUE_GROWTH_PER_MIN = 1.0
QUEUE_FLOOR = 50


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of `pid` (every thread's list: a child belongs to the thread that forked)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # the thread ended meanwhile
    return sorted(set(found))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def rss_mb(pid: int) -> float | None:
    """Resident set size (VmRSS) in MB, None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / MB
    except OSError:
        return None
    return None


def label_processes(roots: dict[str, int]) -> dict[str, int]:
    """{role: pid} for every process of the platform. `roots` maps a role prefix ("web",
    "celery", "beat") to the pid we started; their children are named after what they are:
    uvicorn's workers are spawned interpreters ("web_worker_1"), multiprocessing's resource
    tracker is a helper ("web_helper_1"), Celery's prefork children share the master's command
    line ("celery_child_1")."""
    labelled: dict[str, int] = {}
    for role, root in roots.items():
        labelled[f"{role}_master" if children(root) else role] = root
        workers = helpers = 0
        for child in children(root):
            line = cmdline(child)
            if "resource_tracker" in line or "semaphore_tracker" in line:
                helpers += 1
                labelled[f"{role}_helper_{helpers}"] = child
            else:
                workers += 1
                kind = "worker" if role == "web" else "child"
                labelled[f"{role}_{kind}_{workers}"] = child
    return labelled


# ---------------------------------------------------------------------------------------------
# The verdict
# ---------------------------------------------------------------------------------------------


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, in value per minute (0 for < 2 points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return 60.0 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def grows(points: list[tuple[float, float]]) -> bool:
    """Whether a backlog keeps growing: judged on the second half of the run."""
    if not points:
        return False
    second_half = points[len(points) // 2 :]
    return slope_per_min(second_half) > QUEUE_GROWTH_PER_MIN and points[-1][1] > QUEUE_FLOOR


def memory_summary(samples: list[dict], warmup_s: float) -> tuple[dict, list[str]]:
    """Per process: RSS at the first and last sample, the max, and the growth between the first
    sample at or after `warmup_s` (imports, caches and pools filled) and the last one.
    Returns (flat figures, failures)."""
    figures: dict = {}
    failures: list[str] = []
    roles = sorted({role for s in samples for role in s["rss_mb"]})
    after_warmup = [s for s in samples if s["t_s"] >= warmup_s] or samples[-1:]
    for role in roles:
        series = [s["rss_mb"][role] for s in samples if s["rss_mb"].get(role) is not None]
        if not series:
            continue
        base = next((s["rss_mb"].get(role) for s in after_warmup if s["rss_mb"].get(role)), None)
        end = series[-1]
        growth = round(100.0 * (end - base) / base, 1) if base else 0.0
        figures[f"{role}_rss_start_mb"] = round(series[0], 1)
        figures[f"{role}_rss_warm_mb"] = round(base or 0.0, 1)
        figures[f"{role}_rss_end_mb"] = round(end, 1)
        figures[f"{role}_rss_max_mb"] = round(max(series), 1)
        figures[f"{role}_rss_growth_after_warmup_pct"] = growth
        if growth > MAX_RSS_GROWTH_PCT:
            failures.append(
                f"{role}: RSS grew {growth} % after warm-up ({base:.1f} → {end:.1f} MB)"
            )
        if samples[-1]["rss_mb"].get(role) is None:
            failures.append(f"{role}: the process is gone")
    return figures, failures


def verdict(samples: list[dict], warmup_s: float) -> tuple[dict, list[str]]:
    """Flat figures (unit in the key) and the list of failed criteria of a run's samples."""
    figures, failures = memory_summary(samples, warmup_s)
    queue = [(s["t_s"], s["celery_queue"]) for s in samples]
    outbox = [(s["t_s"], s["outbox_backlog"]) for s in samples]
    figures.update(
        {
            "samples": len(samples),
            "db_connections_max": max(s["db_connections"] for s in samples),
            "db_connections_end": samples[-1]["db_connections"],
            "celery_queue_max": max(v for _, v in queue),
            "celery_queue_end": queue[-1][1],
            "celery_queue_slope_second_half_per_min": round(
                slope_per_min(queue[len(queue) // 2 :]), 2
            ),
            "celery_queue_grows": grows(queue),
            "outbox_backlog_max": max(v for _, v in outbox),
            "outbox_backlog_end": outbox[-1][1],
            "outbox_backlog_grows": grows(outbox),
        }
    )
    if figures["celery_queue_grows"]:
        failures.append(f"the Celery queue grows (ends at {queue[-1][1]})")
    if figures["outbox_backlog_grows"]:
        failures.append(f"the outbox backlog grows (ends at {outbox[-1][1]})")
    return figures, failures
