"""Messages from templates: the organization's override (`NotificationTemplate`) or the shipped
file `templates/notifications/<trigger>/<channel>.<language>.<part>` (parts: `subject`, `txt`,
`html`), rendered with Django's template engine. Subjects, text parts and SMS are rendered
without autoescape (they are not HTML); HTML bodies with autoescape, inside a branded layout
(`templates/notifications/layout.html`).

Languages: es and en are shipped; anything else falls back to en.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from django.conf import settings as django_settings
from django.template import Context, Engine
from django.utils.html import strip_tags

from notifications.models import Channel, NotificationTemplate

SHIPPED_LANGUAGES = ("es", "en")
FALLBACK_LANGUAGE = "en"
TEMPLATE_ROOT = Path(django_settings.BASE_DIR) / "templates" / "notifications"

_text_engine = Engine(dirs=[str(TEMPLATE_ROOT)], autoescape=False)
_html_engine = Engine(dirs=[str(TEMPLATE_ROOT)], autoescape=True)

SMS_OPT_OUT_FOOTER = {"es": "STOP para no recibir", "en": "Reply STOP to opt out"}

# Sample variables for previews (admin, API): what a real message would carry.
SAMPLE_CONTEXT = {
    "recipient_first_name": "Ana",
    "organization_name": "Acme",
    "reference": "ORD-10023",
    "window": "",
    "driver_first_name": "Pedro",
    "tracking_url": "https://track.example.com/t/XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "stops_away": 3,
    "minutes_away": 15,
    "reason": "",
    "support_phone": "+56 51 222 3344",
    "support_email": "ayuda@example.com",
    "unsubscribe_url": "https://example.com/n/unsubscribe/…/",
    "alert_title": "Predicted late: stop 12 of route R007",
    "alert_url": "https://example.com/console/",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def language_for(requested: str) -> str:
    language = (requested or "").split("-")[0].lower()
    return language if language in SHIPPED_LANGUAGES else FALLBACK_LANGUAGE


def format_window(start: datetime, end: datetime, *, language: str) -> str:
    """'entre las 14:10 y las 14:40' / 'between 2:10 and 2:40 pm' (times already local)."""
    if language == "es":
        return f"entre las {start:%H:%M} y las {end:%H:%M}"

    def twelve(moment: datetime) -> tuple[str, str]:
        hour = moment.hour % 12 or 12
        return f"{hour}:{moment:%M}", "am" if moment.hour < 12 else "pm"

    (first, first_half), (second, second_half) = twelve(start), twelve(end)
    if first_half == second_half:
        return f"between {first} and {second} {second_half}"
    return f"between {first} {first_half} and {second} {second_half}"


def _shipped_source(trigger: str, channel: str, language: str, part: str) -> str:
    path = TEMPLATE_ROOT / trigger / f"{channel}.{language}.{part}"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def template_sources(
    organization_id: int | None, trigger: str, channel: str, language: str
) -> dict[str, str]:
    """{'subject', 'text', 'html'} sources: the organization's override, else shipped."""
    language = language_for(language)
    override = None
    if organization_id is not None:
        override = NotificationTemplate.dangerously_unscoped.filter(
            organization_id=organization_id, trigger=trigger, channel=channel, language=language
        ).first()
    if override is not None:
        return {"subject": override.subject, "text": override.text, "html": override.html}
    return {
        "subject": _shipped_source(trigger, channel, language, "subject"),
        "text": _shipped_source(trigger, channel, language, "txt"),
        "html": _shipped_source(trigger, channel, language, "html"),
    }


@lru_cache(maxsize=512)
def _compiled(source: str, *, html: bool):
    """A template compiled once per source text (a batch renders the same few templates many
    times; a compiled Template is immutable and safe to share)."""
    return (_html_engine if html else _text_engine).from_string(source)


@lru_cache(maxsize=1)
def _layout():
    return _html_engine.get_template("layout.html")


def render_sources(sources: dict[str, str], *, channel: str, context: dict) -> Rendered:
    """Render template sources (raises django.template.TemplateSyntaxError for a bad one)."""
    plain = Context(context, autoescape=False)  # a Context escapes unless told not to
    text = _compiled(sources["text"], html=False).render(plain).strip()
    if channel == Channel.SMS:
        return Rendered(subject="", text=" ".join(text.split()), html="")
    subject = _compiled(sources["subject"], html=False).render(plain)
    subject = " ".join(subject.split())
    html = ""
    if sources["html"]:
        body = _compiled(sources["html"], html=True).render(Context(context))
        html = _layout().render(Context({**context, "body": body, "subject": subject}))
    if not text and html:
        text = strip_tags(html).strip()
    return Rendered(subject=subject, text=text, html=html)


def render_message(
    *, organization_id: int | None, trigger: str, channel: str, language: str, context: dict
) -> Rendered:
    sources = template_sources(organization_id, trigger, channel, language)
    return render_sources(sources, channel=channel, context=context)


def with_sms_footer(text: str, *, language: str) -> str:
    return f"{text} {SMS_OPT_OUT_FOOTER[language_for(language)]}"


def redact(text: str, secret: str) -> str:
    """`text` with a credential (a tracking URL) replaced, for the stored preview."""
    if not secret:
        return text
    return text.replace(secret, "[tracking link]")
