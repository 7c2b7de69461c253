"""What the benchmarks on real roads start from (import after `django.setup()`)."""

from __future__ import annotations

from io import StringIO

from django.core.management import call_command


def ensure_coquimbo_roads() -> None:
    """The Coquimbo road network, loaded once (cached download, skipped when present)."""
    call_command(
        "load_road_network",
        "--demo",
        "coquimbo",
        "--if-missing",
        "--no-progress",
        stdout=StringIO(),
    )


def benchmark_organization(slug: str, name: str):
    """The roads, and the benchmark's own organization (created on the first run)."""
    from control_tower.models import Organization

    ensure_coquimbo_roads()
    organization, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
    return organization


def park_running_routes(organization) -> int:
    """Cancel the benchmark organization's running routes once the figures are taken: left
    running, they would keep a demo's ETA sweep (same database, same worker) busy for hours."""
    from tracking.models import Route

    return Route.dangerously_unscoped.filter(
        organization=organization, status__in=("planned", "in_progress")
    ).update(status="cancelled")
