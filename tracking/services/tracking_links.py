"""Tracking links: issue, resolve, revoke, expire, and the lost-link lookup.

The raw token is the recipient's credential. It is 192 random bits from `secrets`
(`token_urlsafe(24)`: 32 URL-safe characters, short enough for an SMS), shown once (in the
answer that issued it) and stored only as its SHA-256: the admin, a database dump or a log
cannot rebuild a working URL. A fast hash is enough for random secrets of this length (no
password stretching); the stored hash is compared with `hmac.compare_digest`.

Every way a link stops working (unknown, malformed, expired, revoked, organization disabled)
gives the same answer, `None`, so a URL tells nobody whether it ever existed.

Expiry: `expires_at` stays empty while the shipment is moving; when it reaches a final status
(delivered, returned, cancelled) the status machine (`shipment_transition`) sets final status
time + `Organization.tracking_link_days` on its links (`TrackingLink.expiry_after_final`).
docs/TRACKING_LINKS.md has the whole picture.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from control_tower.errors import Conflict, TooManyAttempts
from control_tower.ratelimit import rate_limited
from control_tower.tenancy.actors import Actor
from control_tower.tenancy.scope import organization_scope
from tracking.models import LinkSource, Shipment, TrackingLink
from tracking.services.shipments import (
    FINAL_STATUSES,
    shipment_create,
    shipments_bulk_create,
)

TOKEN_BYTES = 24  # 192 bits
# What `token_urlsafe(TOKEN_BYTES)` produces; anything else is refused before any query.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
TRACKING_PATH = "/t/{token}"
# A shipment keeps at most this many working links; issuing one more revokes the oldest (the
# lookup issues a new link each time it matches, so the table cannot grow without bound).
MAX_ACTIVE_LINKS = 10
# `last_opened_at` is written at most this often per link (a page polls; a write per view
# would turn every read into a write).
OPENED_RESOLUTION_S = 60
_NO_MATCH = hashlib.sha256(b"no such token").hexdigest()


def token_hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def _actor_label(actor: Actor | str | None) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor[:200]
    return actor.label[:200]


def _expiry_for(shipment: Shipment, organization) -> datetime | None:
    if shipment.status not in FINAL_STATUSES:
        return None
    return TrackingLink.expiry_after_final(shipment.status_changed_at, organization)


@transaction.atomic
def link_issue(
    shipment: Shipment,
    *,
    actor: Actor | str | None,
    source: str = LinkSource.REISSUED,
    language: str = "",
) -> tuple[TrackingLink, str]:
    """A new link for `shipment`: `(link, raw token)`. The raw token is never stored; give it
    to the recipient (or the API caller) once.

    A shipment that reached its final status longer ago than the organization's
    `tracking_link_days` gets no new link (`Conflict`). Beyond `MAX_ACTIVE_LINKS` working
    links, the oldest are revoked. Other links of the shipment keep working (an SMS already
    sent stays valid); revoke them with `link_revoke`. Runs in the shipment's organization
    scope (a page holding only a resolved link may call it).
    """
    organization = shipment.organization
    with organization_scope(organization):
        return _issue(shipment, organization, actor=actor, source=source, language=language)


def _issue(
    shipment, organization, *, actor, source, language, nonce=None
) -> tuple[TrackingLink, str]:
    now = timezone.now()
    expires_at = _expiry_for(shipment, organization)
    if expires_at is not None and expires_at <= now:
        raise Conflict(
            f"The shipment has been {shipment.status} for more than "
            f"{organization.tracking_link_days} days; its tracking has ended.",
            code="tracking_ended",
        )
    raw = secrets.token_urlsafe(TOKEN_BYTES) if nonce is None else derived_token(nonce)
    link = TrackingLink.objects.create(
        organization_id=shipment.organization_id,
        shipment=shipment,
        token_hash=token_hash(raw),
        source=source,
        created_at=now,
        created_by=_actor_label(actor),
        expires_at=expires_at,
        language=language,
        nonce=nonce,
    )
    _revoke_beyond_limit(shipment, now=now)
    return link, raw


def _usable(now: datetime) -> Q:
    return Q(revoked_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def _revoke_beyond_limit(shipment: Shipment, *, now: datetime) -> None:
    usable = TrackingLink.objects.filter(Q(shipment_id=shipment.pk) & _usable(now))
    newest_first = usable.order_by("-created_at", "-id").values_list("pk", flat=True)
    stale = list(newest_first[MAX_ACTIVE_LINKS:])
    if stale:
        TrackingLink.objects.filter(pk__in=stale).update(
            revoked_at=now, revoked_by=f"superseded (more than {MAX_ACTIVE_LINKS} links)"
        )


# --- links for notification messages ---------------------------------------------------------

_NOTIFICATION_KEY_SALT = "tracking.notification-link"


def derived_token(nonce: str) -> str:
    """The raw token of a notification link: HMAC-SHA256 under a key derived from SECRET_KEY
    (`salted_hmac`) of "notify:<nonce>", its first TOKEN_BYTES bytes in base64url (32
    characters, the shape `link_resolve` accepts). The nonce alone (a database dump) cannot
    rebuild it."""
    digest = salted_hmac(_NOTIFICATION_KEY_SALT, f"notify:{nonce}", algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:TOKEN_BYTES]).decode().rstrip("=")


def notification_link_url(shipment: Shipment) -> str:
    """The tracking URL to put in a message about `shipment`: the newest usable link issued
    for notifications (its token derived again from its nonce), or a new one. Issuing follows
    `link_issue` (MAX_ACTIVE_LINKS, final-status expiry); a shipment whose tracking has ended
    gives "" (the message goes without a link). Revoking the link works as for any link: the
    next message derives a new one."""
    organization = shipment.organization
    now = timezone.now()
    with organization_scope(organization):
        link = (
            TrackingLink.objects.filter(
                Q(shipment_id=shipment.pk) & _usable(now),
                source=LinkSource.NOTIFICATION,
                nonce__isnull=False,
            )
            .order_by("-created_at", "-id")
            .first()
        )
        raw = derived_token(link.nonce) if link is not None else ""
        # After a SECRET_KEY rotation the derived token no longer matches its hash: issue anew.
        if link is None or not hmac.compare_digest(token_hash(raw), link.token_hash):
            try:
                with transaction.atomic():
                    _link, raw = _issue(
                        shipment,
                        organization,
                        actor="notifications",
                        source=LinkSource.NOTIFICATION,
                        language="",
                        nonce=secrets.token_hex(16),
                    )
            except Conflict:
                return ""
    return tracking_url(organization, raw)


def links_issue_many(
    shipments: list[Shipment], *, actor: Actor | None, source: str = LinkSource.CREATED
) -> dict[int, str]:
    """One new link per shipment in one insert (bulk shipment creation): `{shipment id: raw
    token}`. The shipments are new, so no limit or expiry applies."""
    now = timezone.now()
    raw_by_shipment = {s.pk: secrets.token_urlsafe(TOKEN_BYTES) for s in shipments}
    TrackingLink.objects.bulk_create(
        [
            TrackingLink(
                organization_id=s.organization_id,
                shipment=s,
                token_hash=token_hash(raw_by_shipment[s.pk]),
                source=source,
                created_at=now,
                created_by=_actor_label(actor),
            )
            for s in shipments
        ],
        batch_size=1000,
    )
    return raw_by_shipment


def link_resolve(raw_token: str, *, now: datetime | None = None) -> TrackingLink | None:
    """The working link of `raw_token`, with its shipment and organization loaded, or None
    (unknown, malformed, expired, revoked or the organization is disabled: one answer).

    Runs without an organization in scope: the token is the credential, so this is one of
    the sanctioned unscoped reads. The caller then enters `organization_scope(link.organization)`.
    """
    now = now or timezone.now()
    if not isinstance(raw_token, str) or not TOKEN_RE.match(raw_token):
        hmac.compare_digest(_NO_MATCH, _NO_MATCH)
        return None
    digest = token_hash(raw_token)
    link = (
        TrackingLink.dangerously_unscoped.select_related("shipment", "organization")
        .filter(token_hash=digest)
        .first()
    )
    if link is None:
        hmac.compare_digest(_NO_MATCH, digest)
        return None
    if not hmac.compare_digest(link.token_hash, digest):
        return None
    if not link.is_usable(now=now) or not link.organization.is_active:
        return None
    return link


def link_revoke(link: TrackingLink, *, actor: Actor | str | None) -> None:
    """Stop `link` from working, now and for good (revoking twice changes nothing)."""
    now = timezone.now()
    with organization_scope(link.organization):
        TrackingLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=_actor_label(actor)
        )
    link.refresh_from_db(fields=["revoked_at", "revoked_by"])


def link_mark_opened(link: TrackingLink, *, now: datetime | None = None) -> None:
    """Record that the page was opened (at most one write per link per minute)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=OPENED_RESOLUTION_S)
    with organization_scope(link.organization):
        TrackingLink.objects.filter(pk=link.pk).filter(
            Q(last_opened_at__isnull=True) | Q(last_opened_at__lt=cutoff)
        ).update(last_opened_at=now)
    link.last_opened_at = now


def tracking_url(organization, raw_token: str, *, request=None) -> str:
    """The URL to give the recipient: `https://<tracking_host>/t/<token>` when the organization
    has its own domain, else `PUBLIC_BASE_URL/t/<token>`, else the request's own scheme and
    host (development), else a relative URL."""
    path = TRACKING_PATH.format(token=raw_token)
    host = (organization.tracking_host or "").strip().rstrip("/")
    if host:
        return host + path if "://" in host else f"https://{host}{path}"
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL + path
    if request is not None:
        return request.build_absolute_uri(path)
    return path


# --- page views -----------------------------------------------------------------------------

VIEW_WINDOW_S = 60


def link_view_limited(raw_token: str, *, client_ip: str) -> bool:
    """Count one view of the tracking page (or one of its JSON/socket requests) and say
    whether it is over a limit: `TRACKING_VIEWS_PER_TOKEN` per minute for the token (keyed by
    its hash, valid or not, so guessing is throttled too) or `TRACKING_VIEWS_PER_IP` per
    minute for the client address. The page answers 429 when True."""
    by_token = rate_limited(
        "track-token",
        token_hash(raw_token or ""),
        limit=settings.TRACKING_VIEWS_PER_TOKEN,
        window_s=VIEW_WINDOW_S,
    )
    by_ip = bool(client_ip) and rate_limited(
        "track-ip", client_ip, limit=settings.TRACKING_VIEWS_PER_IP, window_s=VIEW_WINDOW_S
    )
    return by_token or by_ip


# --- the lost-link lookup ------------------------------------------------------------------

LOOKUP_WINDOW_S = 3600
# Tries per (organization, reference) per hour, whoever makes them: with 4 phone digits there
# are 10,000 guesses, so this, not the per-IP limit, is what stops a botnet.
LOOKUP_PER_REFERENCE = 5


def _normalized_postcode(value: str) -> str:
    return re.sub(r"[\s-]", "", value or "").upper()


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


def _proof_matches(shipment: Shipment, proof: str) -> bool:
    """The postcode (spaces, dashes and case ignored) or the last 4 digits of the phone. Both
    are compared, always, in constant time."""
    given_postcode = _normalized_postcode(proof)
    postcode = _normalized_postcode(shipment.postal_code)
    by_postcode = hmac.compare_digest(given_postcode.encode(), postcode.encode()) and bool(postcode)
    phone = _digits(shipment.recipient_phone)
    given = _digits(proof)
    by_phone = (
        hmac.compare_digest(given.encode(), phone[-4:].encode())
        and len(given) == 4
        and len(phone) >= 4
    )
    return by_postcode or by_phone


def link_lookup(
    organization, reference: str, proof: str, *, client_ip: str | None = None
) -> tuple[TrackingLink, str] | None:
    """For a recipient who lost the link: the order reference plus the postcode or the last
    4 digits of the phone. A match issues a NEW link (the old ones are hashes: nothing to give
    back) and returns `(link, raw token)`; any miss returns None (unknown reference, wrong
    proof, tracking ended: one answer, so the form cannot tell which references exist).

    Rate-limited before anything is read: per client IP (`TRACKING_LOOKUPS_PER_IP`), per
    organization (`TRACKING_LOOKUPS_PER_ORGANIZATION`) and per reference
    (`LOOKUP_PER_REFERENCE`), each per hour, counted whether the reference exists or not;
    over a limit raises `TooManyAttempts` (429).
    """
    reference = (reference or "").strip()[:64]
    proof = (proof or "").strip()[:20]
    limits = [
        ("lookup-org", str(organization.pk), settings.TRACKING_LOOKUPS_PER_ORGANIZATION),
        ("lookup-ref", f"{organization.pk}:{reference.upper()}", LOOKUP_PER_REFERENCE),
    ]
    if client_ip:
        limits.insert(0, ("lookup-ip", client_ip, settings.TRACKING_LOOKUPS_PER_IP))
    for scope, key, limit in limits:
        if rate_limited(scope, key, limit=limit, window_s=LOOKUP_WINDOW_S):
            raise TooManyAttempts("Too many attempts; try again in an hour.")
    if not reference or not proof:
        return None
    with organization_scope(organization):
        shipment = Shipment.objects.filter(reference__iexact=reference).first()
        if shipment is None or not _proof_matches(shipment, proof):
            return None
        try:
            return link_issue(shipment, actor="recipient (lookup)", source=LinkSource.LOOKUP)
        except Conflict:  # tracking ended: the same answer as a miss
            return None


# --- shipment creation with its link --------------------------------------------------------


@transaction.atomic
def shipment_create_with_link(*, actor: Actor, data: dict) -> tuple[Shipment, str]:
    """`shipment_create`, plus its first tracking link: `(shipment, raw token)`."""
    shipment = shipment_create(actor=actor, data=data)
    _link, raw = link_issue(shipment, actor=actor, source=LinkSource.CREATED)
    return shipment, raw


@transaction.atomic
def shipments_bulk_create_with_links(
    *, actor: Actor, items: list[dict]
) -> tuple[list[Shipment], dict[int, str]]:
    """`shipments_bulk_create`, plus one tracking link each: `(shipments, {id: raw token})`."""
    created = shipments_bulk_create(actor=actor, items=items)
    return created, links_issue_many(created, actor=actor)
