"""`Cache-Control: no-store` on every response to a signed-in caller (a session or, through DRF,
an API key or a device token), unless the view chose its own caching (signed POD links, the
road network's tiles). Tenant data must not stay in a browser's or a proxy's cache after the
person logs out or the device changes hands."""

from __future__ import annotations


class NoStoreForSignedInMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # DRF copies the user it authenticated (API key, device) onto the Django request.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response
