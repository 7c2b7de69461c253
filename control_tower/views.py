"""Small site-wide views: health, home, organization switch, error pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from control_tower.api.errors import json_404, json_500
from control_tower.tenancy.actors import memberships_of
from control_tower.tenancy.middleware import SESSION_KEY


def healthz(request):
    """Liveness plus the two services everything depends on."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT PostGIS_Lib_Version()")
            checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        import redis
        from django.conf import settings

        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1).ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", **checks}, status=200 if healthy else 503
    )


@login_required
def home(request):
    memberships = memberships_of(request.user)
    return render(request, "home.html", {"memberships": memberships, "current": request.actor})


@login_required
@require_POST
def switch_organization(request):
    slug = request.POST.get("organization", "")
    if any(m.organization.slug == slug for m in memberships_of(request.user)):
        request.session[SESSION_KEY] = slug
    return HttpResponseRedirect(_safe_next(request))


def _safe_next(request) -> str:
    """`next` only when it stays on this site (no other host, no scheme tricks like `//host`
    or `javascript:`): otherwise the switch form is an open redirect for phishing links."""
    target = request.POST.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else "/"


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return json_404(request, exception)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return json_500(request)
    return render(request, "500.html", status=500)
