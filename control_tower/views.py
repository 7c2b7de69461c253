"""Small site-wide views: health, home, organization switch, invitations, error pages."""

from __future__ import annotations

import sys

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from control_tower import services
from control_tower.api.errors import json_404, json_500, unavailable_response
from control_tower.errors import DomainError, InvitationInvalid, NotPermitted
from control_tower.redis_clients import sync_redis
from control_tower.tenancy.actors import memberships_of
from control_tower.tenancy.middleware import SESSION_KEY
from control_tower.unavailable import database_unavailable, retry_after_s


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
        sync_redis(timeout_s=1).ping()
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
    chosen = next((m for m in memberships_of(request.user) if m.organization.slug == slug), None)
    if chosen is not None:
        request.session[SESSION_KEY] = slug
        # Also the default where no session says otherwise (the API, a new login).
        services.remember_organization(user=request.user, organization=chosen.organization)
    return HttpResponseRedirect(_safe_next(request))


def _safe_next(request) -> str:
    """`next` only when it stays on this site (no other host, no scheme tricks like `//host`
    or `javascript:`): otherwise the switch form is an open redirect for phishing links."""
    target = request.POST.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if target and allowed else "/"


@require_http_methods(["GET", "POST"])
def invitation(request, token: str):
    """Where an invitation link lands. Logged in as the invited e-mail's account: a button to
    join. Not logged in: log in, or create the account; this page is the same whether or not
    an account exists for the e-mail. Unknown, expired, revoked and used links all get one
    identical answer."""
    invitation = services.invitation_for_link(token)
    if invitation is None:
        return _invalid_invitation(request)
    context = {"invitation": invitation, "invited_to": invitation.organization}
    if request.user.is_authenticated:
        if request.method == "GET":
            return render(request, "invitation.html", context)
        try:
            services.invitation_accept(raw=token, user=request.user)
        except InvitationInvalid:
            return _invalid_invitation(request)
        except NotPermitted as exc:
            return render(request, "invitation.html", {**context, "error": exc.detail}, status=403)
        request.session[SESSION_KEY] = invitation.organization.slug
        return HttpResponseRedirect("/")
    if request.method == "GET":
        return render(request, "invitation.html", context)
    form = {name: request.POST.get(name, "") for name in ("first_name", "last_name")}
    password, again = request.POST.get("password1", ""), request.POST.get("password2", "")
    if password != again:
        error = "The two passwords differ."
        return render(request, "invitation.html", {**context, "form": form, "error": error}, 400)
    try:
        user = services.invitation_accept_with_new_account(
            raw=token, password=password, first_name=form["first_name"], last_name=form["last_name"]
        )
    except InvitationInvalid:
        return _invalid_invitation(request)
    except DomainError as exc:
        messages = [m for ms in exc.fields.values() for m in ms] or [exc.detail]
        context.update(form=form, error=" ".join(messages))
        return render(request, "invitation.html", context, status=400)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_KEY] = invitation.organization.slug
    return HttpResponseRedirect("/")


def _invalid_invitation(request):
    return render(request, "invitation_invalid.html", {"detail": services.INVALID_LINK}, status=410)


# Paths answered to programs, never to browsers: their errors are the JSON error body.
MACHINE_PATH_PREFIXES = ("/api/", "/ingest/")


def not_found(request, exception=None):
    if request.path.startswith(MACHINE_PATH_PREFIXES):
        return json_404(request, exception)
    return render(request, "404.html", status=404)


def server_error(request):
    """Django's handler500: called inside the `except` of the failed request, so the exception
    is `sys.exc_info()`. An unreachable database is a 503 with Retry-After, not our bug."""
    if database_unavailable(sys.exc_info()[1]):
        if request.path.startswith(MACHINE_PATH_PREFIXES):
            return unavailable_response()
        # No template: rendering one may need the database (context processors, the user).
        response = HttpResponse(UNAVAILABLE_PAGE, status=503, content_type="text/html")
        response["Retry-After"] = str(retry_after_s())
        return response
    if request.path.startswith(MACHINE_PATH_PREFIXES):
        return json_500(request)
    return render(request, "500.html", status=500)


UNAVAILABLE_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Back in a moment</title>"
    "<h1>Back in a moment</h1><p>The service is briefly unavailable. Nothing was lost; "
    "reload the page in a few seconds.</p></html>"
)
