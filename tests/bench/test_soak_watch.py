"""The soak's verdict (bench/soak_watch.py): plain arithmetic on sample rows, checked on rows
made up for each criterion; and the /proc readers on this very process."""

from __future__ import annotations

import os
import subprocess

from bench.soak_watch import children, cmdline, grows, rss_mb, slope_per_min, verdict


def sample(t_s, *, web=150.0, queue=0, outbox=0, db=40):
    return {
        "t_s": t_s,
        "rss_mb": {"web_worker_1": web},
        "db_connections": db,
        "celery_queue": queue,
        "outbox_backlog": outbox,
    }


def test_slope_is_per_minute():
    assert slope_per_min([(0, 0), (30, 5), (60, 10)]) == 10.0
    assert slope_per_min([(0, 7)]) == 0.0


def test_a_breathing_queue_does_not_grow_but_a_climbing_one_does():
    breathing = [(t, v) for t, v in zip(range(0, 600, 30), [0, 12, 3, 40, 0, 9] * 4, strict=False)]
    assert not grows(breathing)
    climbing = [(t, t // 3) for t in range(0, 600, 30)]
    assert grows(climbing)
    # Climbing but still tiny: bounded by the floor.
    assert not grows([(t, t // 30) for t in range(0, 600, 30)])


def test_memory_growth_counts_from_the_warm_sample():
    # Start-up growth (100 → 150 MB before warm-up) is not a leak; 150 → 160 MB after is 6.7 %.
    rows = [sample(0, web=100.0), sample(180, web=150.0), sample(1800, web=160.0)]
    figures, failures = verdict(rows, warmup_s=180)
    assert figures["web_worker_1_rss_start_mb"] == 100.0
    assert figures["web_worker_1_rss_warm_mb"] == 150.0
    assert figures["web_worker_1_rss_growth_after_warmup_pct"] == 6.7
    assert failures == []


def test_a_leak_a_growing_queue_and_a_dead_process_fail():
    rows = [sample(t, web=150.0 + t / 10, queue=t, outbox=0) for t in range(0, 1830, 30)]
    rows[-1]["rss_mb"]["celery_child_1"] = None
    rows[0]["rss_mb"]["celery_child_1"] = 110.0
    figures, failures = verdict(rows, warmup_s=180)
    assert figures["celery_queue_grows"] and figures["celery_queue_max"] == 1800
    assert not figures["outbox_backlog_grows"]
    assert figures["db_connections_max"] == 40
    assert any(f.startswith("web_worker_1: RSS grew") for f in failures)
    assert any("celery_child_1: the process is gone" in f for f in failures)
    assert any("Celery queue grows" in f for f in failures)


def test_proc_readers_see_a_child_and_lose_it_when_it_ends():
    child = subprocess.Popen(["sleep", "30"])  # noqa: S607
    try:
        assert child.pid in children(os.getpid())
        assert cmdline(child.pid) == "sleep 30"
        assert 0 < rss_mb(child.pid) < 50
    finally:
        child.kill()
        child.wait()
    assert rss_mb(child.pid) is None
    assert child.pid not in children(os.getpid())
