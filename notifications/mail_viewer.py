"""The captured-mail viewer: the messages the demo's mail sink stored (notifications/mailsink.py),
in the browser, at /n/dev/mail/.

Enabled only when NOTIFICATIONS_MAIL_VIEWER_DIR names the sink's folder (404 otherwise, so a
production site without the setting shows nothing), and only to logged-in staff
(`is_staff`) or owners/admins of the organization they work in: the messages are other
people's mail. Only files the sink named are shown (`mailsink.message_path`). A message's HTML
is served on its own URL with a Content-Security-Policy that forbids scripts, plugins, forms
and remote loads, into a sandboxed iframe: an e-mail's HTML is untrusted.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path

from csp.constants import SELF
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from notifications.mailsink import message_names, message_path

PAGE_SIZE = 50
# Inline styles and images are what e-mails use; nothing else loads, nothing runs.
HTML_PART_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)
SHOWN_HEADERS = (
    "From",
    "To",
    "X-Original-To",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
)


def viewer_directory() -> Path | None:
    configured = getattr(settings, "NOTIFICATIONS_MAIL_VIEWER_DIR", "")
    return Path(configured) if configured else None


def may_read_captured_mail(request) -> bool:
    actor = getattr(request, "actor", None)
    return request.user.is_staff or bool(actor is not None and actor.is_admin)


def _viewer(view):
    """Disabled → 404; anonymous → the login page; neither staff nor admin → 403."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        directory = viewer_directory()
        if directory is None:
            raise Http404("The mail viewer is not enabled.")
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not may_read_captured_mail(request):
            raise PermissionDenied("Captured mail is for staff and organization admins.")
        return view(request, directory, *args, **kwargs)

    return require_GET(wrapped)


def _read(directory: Path, name: str) -> EmailMessage:
    path = message_path(directory, name)
    if path is None:
        raise Http404("No such message.")
    with open(path, "rb") as handle:
        return BytesParser(policy=policy.default).parse(handle)


def _summary(directory: Path, name: str) -> dict:
    """Time, sender, recipient and subject from the headers alone (the body is not read)."""
    path = message_path(directory, name)
    headers = {}
    if path is not None:
        with open(path, "rb") as handle:
            headers = BytesHeaderParser(policy=policy.default).parse(handle)
    return {
        "name": name,
        "received": _received(name),
        "sent": _date(headers.get("Date")),
        "to": str(headers.get("To", "")),
        "from": str(headers.get("From", "")),
        "subject": str(headers.get("Subject", "")),
    }


@_viewer
def mail_list(request, directory: Path):
    page = Paginator(message_names(directory), PAGE_SIZE).get_page(request.GET.get("page"))
    messages = [_summary(directory, name) for name in page.object_list]
    return render(
        request,
        "notifications/mail_viewer.html",
        {"page": page, "messages": messages, "directory": directory},
    )


# The message's HTML part is shown in a sandboxed frame of this site (mail_html below).
@csp_update({"frame-src": [SELF]})
@_viewer
def mail_detail(request, directory: Path, name: str):
    message = _read(directory, name)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return render(
        request,
        "notifications/mail_viewer_detail.html",
        {
            "name": name,
            "received": _received(name),
            "subject": str(message.get("Subject", "")),
            "headers": [(h, str(message[h])) for h in SHOWN_HEADERS if message[h] is not None],
            "all_headers": [(key, str(value)) for key, value in message.items()],
            "text": text.get_content() if text is not None else "",
            "has_html": html is not None,
            "attachments": [part.get_filename() or "" for part in message.iter_attachments()],
        },
    )


@xframe_options_sameorigin
@_viewer
def mail_html(request, directory: Path, name: str):
    html = _read(directory, name).get_body(preferencelist=("html",))
    if html is None:
        raise Http404("This message has no HTML part.")
    response = HttpResponse(html.get_content(), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = HTML_PART_CSP
    _private(response)
    return response


@_viewer
def mail_raw(request, directory: Path, name: str):
    path = message_path(directory, name)
    if path is None:
        raise Http404("No such message.")
    response = HttpResponse(path.read_bytes(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{name}"'
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    _private(response)
    return response


def _private(response: HttpResponse) -> None:
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"


def _received(name: str) -> datetime:
    return datetime.fromtimestamp(int(name.split("-", 1)[0]) / 1e9, tz=UTC)


def _date(value):
    try:
        return parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        return None
