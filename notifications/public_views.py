"""Public (unauthenticated) endpoints: the unsubscribe page and its one-click POST (RFC 8058),
provider delivery reports, and inbound SMS (STOP / START)."""

from __future__ import annotations

import dataclasses

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from control_tower.models import Organization
from notifications.addresses import InvalidAddress, normalize_phone
from notifications.channels.registry import get_sms_backend
from notifications.models import PreferenceSource, PreferenceState
from notifications.rendering import language_for
from notifications.services.preferences import (
    contact_preference_set,
    inbound_keyword,
    organizations_for_sms_number,
)
from notifications.services.provider_status import record_provider_status
from notifications.unsubscribe import read_token


@csrf_exempt  # the token is the credential; mail clients POST one-click without a session
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET: a page with a confirm button; POST (the button, or a mail client's one-click
    `List-Unsubscribe=One-Click`): opt the address out."""
    data = read_token(token)
    if data is None:
        raise Http404("Unknown link.")
    organization_id, channel, address = data
    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:
        raise Http404("Unknown link.")
    language = language_for(organization.default_language)
    done = False
    if request.method == "POST":
        contact_preference_set(
            organization=organization,
            channel=channel,
            address=address,
            state=PreferenceState.OPTED_OUT,
            source=PreferenceSource.UNSUBSCRIBE_LINK,
        )
        done = True
        if request.POST.get("List-Unsubscribe") == "One-Click":
            return HttpResponse("Unsubscribed.", content_type="text/plain")
    return render(
        request,
        "notifications/unsubscribe.html",
        {
            "organization": organization,
            "address": address,
            "done": done,
            "language": language,
        },
    )


def _backend(name: str):
    try:
        return get_sms_backend(name)
    except LookupError as exc:
        raise Http404("Unknown SMS backend.") from exc


@csrf_exempt
@require_POST
def sms_status(request, backend: str, key: str):
    """A provider's delivery report for the message with idempotency key `key`."""
    sms = _backend(backend)
    if not sms.verify_request(request):
        return HttpResponse("Forbidden.", status=403, content_type="text/plain")
    report = sms.parse_status(request)
    if not report.idempotency_key:
        report = dataclasses.replace(report, idempotency_key=key)
    record_provider_status(sms.name, report)
    return HttpResponse("OK", content_type="text/plain")


@csrf_exempt
@require_POST
def sms_inbound(request, backend: str):
    """STOP and friends opt the sender out, START and friends back in, for the organizations
    behind the number it wrote to. Anything else is ignored. Answers an empty 200."""
    sms = _backend(backend)
    if not sms.verify_request(request):
        return HttpResponse("Forbidden.", status=403, content_type="text/plain")
    inbound = sms.parse_inbound(request)
    keyword = inbound_keyword(inbound.body)
    if keyword:
        try:
            address = normalize_phone(inbound.from_number)
        except InvalidAddress:
            return HttpResponse("", content_type="text/plain")
        state, source = (
            (PreferenceState.OPTED_OUT, PreferenceSource.SMS_STOP)
            if keyword == "stop"
            else (PreferenceState.OPTED_IN, PreferenceSource.SMS_START)
        )
        for organization in organizations_for_sms_number(inbound.to_number):
            contact_preference_set(
                organization=organization,
                channel="sms",
                address=address,
                state=state,
                source=source,
            )
    return HttpResponse("", content_type="text/plain")
