"""Public endpoints (see public_urls.py). To be written: unsubscribe page, SMS status
callbacks, inbound SMS."""

from django.http import HttpResponse


def unsubscribe(request, token: str):
    return HttpResponse(status=501)
