"""The login lockout page (django-axes calls `lockout_response` through AXES_LOCKOUT_CALLABLE):
the same page for the site's login and the admin's, 429 with `Retry-After` = the cool-off."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.shortcuts import render


def lockout_response(request, original_response=None, credentials=None):
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    response = render(
        request,
        "registration/locked_out.html",
        {"cooloff_minutes": max(1, seconds // 60)},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    response["Cache-Control"] = "no-store"
    return response


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' check, for logins that come with a request (the site's and the admin's
    login forms). A call without one is the driver app's sign-in (driver_app/services.py), which
    has its own limit per IP and e-mail, or a test's `client.login`: axes would refuse it
    outright, so it is left to the password backend."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
