"""Tracking links benchmark: what a tracking page request costs before the page itself.

Against the database in DATABASE_URL with the demo loaded (`manage.py load_demo`) and the
Redis in REDIS_URL: `link_resolve` of a valid and of an unknown token (the same code path:
the no-enumeration property should show as equal times), `link_view_limited` (two Redis
counters), a lookup miss (three counters and one query), and `link_issue`. Links issued here
are revoked at the end; the rate-limit counters it used are deleted.

    .venv/bin/python bench/tracking_links.py --n 2000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "control_tower.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.results_file import write_results  # noqa: E402
from control_tower.models import Organization  # noqa: E402
from control_tower.ratelimit import ratelimit_reset  # noqa: E402
from control_tower.tenancy.scope import organization_scope  # noqa: E402
from tracking.models import Shipment, TrackingLink  # noqa: E402
from tracking.services import tracking_links as links  # noqa: E402


@contextmanager
def organization_lookup_limit_lifted():
    """The per-organization lookup limit would stop the run; lifted for it, then restored."""
    saved = settings.TRACKING_LOOKUPS_PER_ORGANIZATION
    settings.TRACKING_LOOKUPS_PER_ORGANIZATION = 10**9
    try:
        yield
    finally:
        settings.TRACKING_LOOKUPS_PER_ORGANIZATION = saved


def timed(fn, n: int) -> dict:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50": round(statistics.median(samples), 3),
        "p95": round(samples[int(0.95 * (len(samples) - 1))], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    organization = Organization.objects.get(slug="demo")
    with organization_scope(organization):
        shipment = Shipment.objects.order_by("pk").first()
    with organization_scope(organization):
        link, raw = links.link_issue(shipment, actor="bench")
    results: dict = {"n": args.n}
    for name, fn in (
        ("resolve_valid", lambda: links.link_resolve(raw)),
        ("resolve_unknown", lambda: links.link_resolve("x" * 32)),
        ("view_limited", lambda: links.link_view_limited(raw, client_ip="198.51.100.1")),
    ):
        figures = timed(fn, args.n)
        results[f"{name}_p50_ms"] = figures["p50"]
        results[f"{name}_p95_ms"] = figures["p95"]
    # Lookups are limited to 5 per reference and hour: each try uses a new reference.
    counter = iter(range(10**9))
    with organization_lookup_limit_lifted():
        figures = timed(
            lambda: links.link_lookup(organization, f"NO-SUCH-{next(counter)}", "0000"),
            min(args.n, 500),
        )
    results["lookup_miss_p50_ms"] = figures["p50"]
    results["lookup_miss_p95_ms"] = figures["p95"]
    issued = []
    with organization_scope(organization):
        figures = timed(lambda: issued.append(links.link_issue(shipment, actor="bench")), 200)
        TrackingLink.objects.filter(pk__in=[link.pk] + [i[0].pk for i in issued]).update(
            revoked_by="bench", revoked_at=timezone.now()
        )
    results["issue_p50_ms"] = figures["p50"]
    results["issue_p95_ms"] = figures["p95"]
    ratelimit_reset()
    write_results("tracking_links", results)


if __name__ == "__main__":
    main()
