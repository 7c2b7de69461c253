"""The customer's tracking page: `/t/<token>`, its JSON twin, the recipient's forms and the
lost-link lookup.

The token is the credential: `link_resolve` (tracking/services/tracking_links.py) answers
None for unknown, expired and revoked tokens alike, and every such request gets the same 404
page. Views count each request against the rate limits (per token hash and per client
address) before anything else, enter the link's organization scope, and hand the work to
the view model (`selectors.tracking_state`) or to one customer-action service. Works with
JavaScript off: forms post and redirect back (303); the script only adds live updates.
"""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import formats, translation
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from control_tower.errors import Conflict, DomainError, TooManyAttempts, error_body
from control_tower.models import Organization
from control_tower.ratelimit import client_ip
from control_tower.tenancy.scope import organization_scope
from control_tower.web import pick_language
from portal.tracking_page.branding import brand_colors
from portal.tracking_page.headers import new_nonce, tracking_headers
from portal.tracking_page.selectors import FINAL_STEP, local_time, tracking_state
from tracking.errors import InvalidInput
from tracking.models import ShipmentStatus
from tracking.services import customer_actions
from tracking.services.tracking_links import (
    link_lookup,
    link_mark_opened,
    link_resolve,
    link_view_limited,
    tracking_url,
)

logger = logging.getLogger(__name__)

ACTIONS = ("instructions", "reschedule", "not-home", "rate")
RATE_WINDOW_S = 60


class Limited(Exception):
    """Over a rate limit: answered 429 in plain words."""


def _count_view(request, raw_token: str) -> None:
    if link_view_limited(raw_token, client_ip=client_ip(request)):
        raise Limited


def _not_found(request, language: str | None = None):
    """The one answer for every token that does not open a page (unknown, expired, revoked)."""
    language = language or pick_language(request, link_language="", default="es")
    with translation.override(language):
        response = render(
            request,
            "tracking/not_found.html",
            {"language": language, "nonce": None},
            status=404,
        )
    return tracking_headers(response, request)


def _too_many(request, *, as_json: bool = False):
    language = pick_language(request, link_language="", default="es")
    with translation.override(language):
        if as_json:
            response = JsonResponse(
                error_body("too_many_requests", _("Too many requests. Wait a minute.")), status=429
            )
        else:
            response = render(request, "tracking/too_many.html", {"language": language}, status=429)
    response["Retry-After"] = str(RATE_WINDOW_S)
    return tracking_headers(response, request)


def _open(request, raw_token: str):
    """(link, language) or raises Limited / Http404."""
    _count_view(request, raw_token)
    link = link_resolve(raw_token)
    if link is None:
        raise Http404
    organization = link.organization
    language = pick_language(
        request, link_language=link.language, default=organization.default_language
    )
    return link, language


def _state(link, language: str) -> dict:
    with organization_scope(link.organization):
        return tracking_state(
            shipment=link.shipment, organization=link.organization, language=language
        )


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _forms(link, state: dict, language: str) -> dict:
    """Which of the recipient's forms the page offers now, with what they need."""
    shipment = link.shipment
    final = shipment.status in FINAL_STEP and shipment.status != ShipmentStatus.ATTEMPT_FAILED
    forms: dict = {
        "instructions": not final,
        "not_home": bool(state["stops_before"] is not None and not final and not state["away"]),
        "rate": shipment.status == ShipmentStatus.DELIVERED and not state["rated"],
        "reschedule": [],
    }
    if not final:
        with organization_scope(link.organization), translation.override(language):
            try:
                options = customer_actions.customer_reschedule_options(link)
            except DomainError:
                options = []
        zone = link.organization.zone
        with translation.override(language):
            forms["reschedule"] = [
                {
                    "id": option.id,
                    "text": _("%(day)s, %(start)s – %(end)s")
                    % {
                        "day": capfirst(
                            formats.date_format(option.start.astimezone(zone), _("l j F"))
                        ),
                        "start": local_time(option.start, zone),
                        "end": local_time(option.end, zone),
                    },
                }
                for option in options
            ]
    return forms


def _config(request, raw_token: str, state: dict) -> dict:
    return {
        "socket": f"/ws/v1/track/{raw_token}/",
        "poll": reverse("tracking-state", kwargs={"token": raw_token}),
        "pollSeconds": settings.TRACKING_POLL_S,
        "tileUrl": settings.TRACKING_TILE_URL,
        "tileAttribution": "© OpenStreetMap contributors",
        "leafletJs": static("leaflet/leaflet.js"),
        "leafletCss": static("leaflet/leaflet.css"),
        "labels": {
            "driver": _("Your driver"),
            "destination": _("Your address"),
            "live": _("Live"),
            "offline": _("Updates paused, retrying…"),
        },
    }


@require_GET
def tracking_page(request, token: str):
    try:
        link, language = _open(request, token)
    except Limited:
        return _too_many(request)
    except Http404:
        return _not_found(request)
    link_mark_opened(link)
    return _render_page(request, token, link, language)


def _render_page(request, token, link, language, *, errors=None, status=200):
    state = _state(link, language)
    organization = link.organization
    nonce = new_nonce()
    done = request.GET.get("done", "")
    with translation.override(language):
        context = {
            "language": language,
            "other_language": "en" if language == "es" else "es",
            "organization": organization,
            "colors": brand_colors(organization.primary_color),
            "state": state,
            "forms": _forms(link, state, language),
            "instructions": link.shipment.delivery_instructions,
            "form_key": secrets.token_urlsafe(16),
            "token": token,
            "done": done if done in ACTIONS else "",
            "errors": errors or {},
            "config": _config(request, token, state),
            "nonce": nonce,
        }
        response = render(request, "tracking/page.html", context, status=status)
    return tracking_headers(response, request, nonce=nonce)


@require_GET
def tracking_state_json(request, token: str):
    """The polling fallback: the same view model as the page, as JSON."""
    try:
        link, language = _open(request, token)
    except Limited:
        return _too_many(request, as_json=True)
    except Http404:
        response = JsonResponse(error_body("not_found", "Not found."), status=404)
        return tracking_headers(response, request)
    response = JsonResponse(_state(link, language))
    return tracking_headers(response, request)


# ---------------------------------------------------------------------------------------------
# The recipient's say
# ---------------------------------------------------------------------------------------------


def _field_error(exc: DomainError) -> str:
    """The error in the recipient's language where we know the field, else the service's
    own words."""
    fields = getattr(exc, "fields", {}) or {}
    known = {
        "text": _("Please keep the instructions under 1,000 characters."),
        "option": _("That time is no longer available. Please choose another."),
        "key": _("The form expired. Please try again."),
        "stars": _("Please choose from 1 to 5 stars."),
        "comment": _("Please keep the comment under 1,000 characters."),
    }
    for field in fields:
        if field in known:
            return known[field]
    if isinstance(exc, Conflict):
        return _("This can no longer be changed: %(detail)s") % {"detail": exc.detail}
    return exc.detail


@require_POST
def tracking_action(request, token: str, action: str):
    if action not in ACTIONS:
        raise Http404
    try:
        link, language = _open(request, token)
    except Limited:
        return _too_many(request)
    except Http404:
        return _not_found(request)
    key = (request.POST.get("key") or "")[:64] or secrets.token_urlsafe(16)
    with translation.override(language):
        try:
            with organization_scope(link.organization):
                _run_action(link, action, request.POST, key)
        except TooManyAttempts:
            return _too_many(request)
        except (InvalidInput, DomainError) as exc:
            errors = {action.replace("-", "_"): _field_error(exc)}
            return _render_page(request, token, link, language, errors=errors, status=400)
    target = reverse("tracking-page", kwargs={"token": token}) + f"?done={action}#{action}"
    return HttpResponseRedirect(target, status=303)


def _run_action(link, action: str, data, key: str) -> None:
    if action == "instructions":
        customer_actions.customer_set_instructions(
            link, text=(data.get("text") or "")[:2000], key=key
        )
    elif action == "reschedule":
        option = data.get("option_id") or ""
        if not option:
            raise InvalidInput.on("option", "Choose a day and time.")
        customer_actions.customer_reschedule(link, option_id=option, key=key)
    elif action == "not-home":
        customer_actions.customer_not_home(link, key=key)
    elif action == "rate":
        try:
            stars = int(data.get("stars") or 0)
        except ValueError:
            stars = 0
        customer_actions.customer_rate(
            link, stars=stars, comment=(data.get("comment") or "")[:2000], key=key
        )


# ---------------------------------------------------------------------------------------------
# The lost-link lookup
# ---------------------------------------------------------------------------------------------


def _organization_for(request, slug: str | None) -> Organization | None:
    organizations = Organization.objects.filter(is_active=True)
    if slug:
        return organizations.filter(slug=slug).first()
    host = request.get_host().split(":")[0].lower()
    return organizations.filter(tracking_host__iexact=host).first() if host else None


@require_http_methods(["GET", "POST"])
def tracking_lookup(request, slug: str | None = None):
    """Order reference plus postcode or the phone's last 4 digits → a new link. One answer
    for every miss; rate-limited by the lookup service."""
    organization = _organization_for(request, slug)
    if organization is None:
        return _not_found(request)
    language = pick_language(request, link_language="", default=organization.default_language)
    nonce = new_nonce()
    error = ""
    status = 200
    with translation.override(language):
        if request.method == "POST":
            try:
                found = link_lookup(
                    organization,
                    request.POST.get("reference", ""),
                    request.POST.get("proof", ""),
                    client_ip=client_ip(request),
                )
            except TooManyAttempts:
                return _too_many(request)
            if found is not None:
                _link, raw = found
                url = tracking_url(organization, raw, request=request)
                return HttpResponseRedirect(url, status=303)
            error = _("We could not find an order with those details. Check them and try again.")
            status = 400
        response = render(
            request,
            "tracking/lookup.html",
            {
                "language": language,
                "organization": organization,
                "colors": brand_colors(organization.primary_color),
                "error": error,
                "nonce": nonce,
            },
            status=status,
        )
    return tracking_headers(response, request, nonce=nonce)
