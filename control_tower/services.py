"""Writes on organizations, memberships, invitations and API keys."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone

from control_tower.errors import Conflict, DomainError, InvitationInvalid, NotPermitted
from control_tower.models import ApiKey, Invitation, Membership, Organization, Profile
from control_tower.realtime import notify_user_on_commit
from control_tower.tenancy.actors import API_KEY_KIND, Actor
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import organization_scope
from control_tower.tenancy.secrets import issue_secret, secret_matches, split_prefix

User = get_user_model()
logger = logging.getLogger(__name__)

INVITATION_KIND = "cti"
INVITATION_PATH = "/accounts/invitations/{token}/"


def _check_role_change(*, actor: Actor, role: str, carrier) -> None:
    if role == Role.OWNER and actor.role != Role.OWNER:
        raise NotPermitted("Only an owner can make someone an owner.")
    if role == Role.CARRIER_USER and carrier is None:
        raise DomainError(
            "A carrier user must be bound to a carrier.",
            fields={"carrier": ["Required for the carrier_user role."]},
            code="validation_error",
        )
    if role != Role.CARRIER_USER and carrier is not None:
        raise DomainError(
            "Only carrier users are bound to a carrier.",
            fields={"carrier": ["Leave empty unless the role is carrier_user."]},
            code="validation_error",
        )


def _check_keeps_an_owner(*, membership: Membership) -> None:
    if membership.role != Role.OWNER:
        return
    owners = Membership.objects.filter(role=Role.OWNER).select_for_update()
    if owners.exclude(pk=membership.pk).count() == 0:
        raise DomainError("An organization needs at least one owner.", code="last_owner", fields={})


def _normalize_email(email: str) -> str:
    return User.objects.normalize_email(email.strip()).lower()


def _invalid(field: str, message: str, detail: str | None = None) -> DomainError:
    return DomainError(detail or message, fields={field: [message]}, code="validation_error")


@transaction.atomic
def invitation_create(
    *, actor: Actor, email: str, role: str, carrier=None, base_url: str = ""
) -> tuple[Invitation, str]:
    """Invite `email` to the actor's organization. Returns the row and the link, which is
    shown once (and e-mailed after commit where e-mail is configured).

    Whether an account exists for the address changes nothing here, neither the reply nor
    what is stored: the inviter learns about the person only once they accept. Inviting an
    address again replaces its open invitation (the old link stops working).
    """
    _check_role_change(actor=actor, role=role, carrier=carrier)
    email = _normalize_email(email)
    if Membership.objects.filter(user__email__iexact=email).exists():
        # Only this organization's own members are looked at: nothing about other tenants.
        raise _invalid("email", "Already a member.", f"{email} is already a member.")
    now = timezone.now()
    Invitation.objects.filter(email=email, accepted_at=None, revoked_at=None).update(revoked_at=now)
    secret = issue_secret(INVITATION_KIND)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                organization=actor.organization,
                email=email,
                role=role,
                carrier=carrier,
                token_prefix=secret.prefix,
                token_hash=secret.digest,
                invited_by=actor.user if actor.user is not None and actor.user.pk else None,
                created_at=now,
                expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
            )
    except IntegrityError:
        # Another invitation to the same address was created concurrently (one open per
        # address and organization, enforced by the database).
        raise Conflict(
            f"An invitation to {email} was just sent.",
            fields={"email": ["An invitation to this address was just sent."]},
        ) from None
    link = base_url.rstrip("/") + INVITATION_PATH.format(token=secret.raw)
    if _email_configured():
        transaction.on_commit(lambda: _send_invitation(invitation, link))
    return invitation, link


def _email_configured() -> bool:
    smtp = settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    return not smtp or bool(settings.EMAIL_HOST)


def _send_invitation(invitation: Invitation, link: str) -> None:
    organization = invitation.organization
    try:
        send_mail(
            subject=f"Invitation to {organization.name} on the control tower",
            message=(
                f"You are invited to join {organization.name} as "
                f"{invitation.get_role_display()}.\n\nAccept here (the link works until "
                f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n{link}\n\n"
                "If you did not expect this, ignore this message."
            ),
            from_email=None,
            recipient_list=[invitation.email],
        )
    except Exception:  # noqa: BLE001 - the inviter still has the link to pass on by hand
        logger.exception("invitation e-mail to %s failed", invitation.email)


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    """Revoke an open invitation (idempotent; an accepted one stays accepted)."""
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def invitation_for_link(raw: str, *, for_update: bool = False) -> Invitation | None:
    """The open invitation of a link, or None (unknown, expired, revoked or used alike)."""
    prefix = split_prefix(raw or "", INVITATION_KIND)
    if prefix is None:
        return None
    # The person opening the link has no organization yet: the sanctioned unscoped read.
    rows = Invitation.dangerously_unscoped.select_related("organization", "carrier")
    if for_update:
        rows = rows.select_for_update(of=("self",))
    invitation = rows.filter(token_prefix=prefix).first()
    if invitation is None or not secret_matches(raw, invitation.token_hash):
        return None
    if invitation.status != "pending" or not invitation.organization.is_active:
        return None
    return invitation


INVALID_LINK = "This invitation link is no longer valid (expired, revoked or already used)."


@transaction.atomic
def invitation_accept(*, raw: str, user) -> Membership:
    """`user` (logged in as the invited e-mail's account) joins the organization."""
    invitation = invitation_for_link(raw, for_update=True)
    if invitation is None:
        raise InvitationInvalid(INVALID_LINK, fields={})
    if _normalize_email(user.email or "") != invitation.email:
        raise NotPermitted("This invitation was sent to another e-mail address.")
    # The accepting person's request runs in their current organization (or none): the writes
    # belong to the inviting one.
    with organization_scope(invitation.organization):
        membership, _created = Membership.objects.get_or_create(
            user=user, defaults={"role": invitation.role, "carrier": invitation.carrier}
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
    remember_organization(user=user, organization=invitation.organization)
    return membership


@transaction.atomic
def invitation_accept_with_new_account(
    *, raw: str, password: str, first_name: str = "", last_name: str = ""
):
    """Create the invited e-mail's account with a password, then accept. Refused when an
    account already exists for the address (then the person logs in to accept)."""
    invitation = invitation_for_link(raw, for_update=True)
    if invitation is None:
        raise InvitationInvalid(INVALID_LINK, fields={})
    if User.objects.filter(email__iexact=invitation.email).exists():
        raise _invalid(
            "email", "Log in with your account to accept.", "Log in to accept this invitation."
        )
    user = User(
        username=invitation.email,
        email=invitation.email,
        first_name=first_name[:150],
        last_name=last_name[:150],
    )
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise DomainError(
            "The password is too weak.", fields={"password1": exc.messages}, code="validation_error"
        ) from exc
    user.set_password(password)
    user.save()
    invitation_accept(raw=raw, user=user)
    return user


def remember_organization(*, user, organization: Organization) -> None:
    """The organization a person in several organizations works in when they do not say."""
    Profile.objects.update_or_create(user=user, defaults={"last_organization": organization})


@transaction.atomic
def membership_update(
    *, actor: Actor, membership: Membership, role: str, carrier=None
) -> Membership:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == Role.OWNER and actor.role != Role.OWNER:
        raise NotPermitted("Only an owner can change another owner's role.")
    _check_role_change(actor=actor, role=role, carrier=carrier)
    if role != Role.OWNER:
        _check_keeps_an_owner(membership=membership)
    membership.role = role
    membership.carrier = carrier
    membership.save(update_fields=["role", "carrier"])
    _announce_membership_change(membership, "membership.changed")
    return membership


@transaction.atomic
def membership_delete(*, actor: Actor, membership: Membership) -> None:
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    if membership.role == Role.OWNER and actor.role != Role.OWNER:
        raise NotPermitted("Only an owner can remove an owner.")
    _check_keeps_an_owner(membership=membership)
    _announce_membership_change(membership, "membership.revoked")
    membership.delete()


def _announce_membership_change(membership: Membership, event: str) -> None:
    # Open console sockets re-check the membership at once (and close if it no longer allows).
    notify_user_on_commit(
        organization_id=membership.organization_id,
        user_id=membership.user_id,
        event=event,
        data={"membership": membership.pk},
    )


def api_key_create(
    *,
    actor: Actor,
    name: str,
    scopes: list[str],
    carrier=None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key. Returns the row and the raw key, which is shown once and never stored."""
    secret = issue_secret(API_KEY_KIND)
    key = ApiKey.objects.create(
        organization=actor.organization,
        name=name,
        prefix=secret.prefix,
        key_hash=secret.digest,
        scopes=sorted(set(scopes)),
        carrier=carrier,
        expires_at=expires_at,
        created_by=actor.user if actor.user is not None and actor.user.pk else None,
    )
    return key, secret.raw


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key (idempotent). The row stays for the audit trail."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_record_use(*, api_key_id: int, at: datetime) -> bool:
    """Move `last_used_at` forward (never back). Returns whether it changed."""
    changed = ApiKey.objects.filter(pk=api_key_id, last_used_at__lt=at).update(last_used_at=at)
    if not changed:
        changed = ApiKey.objects.filter(pk=api_key_id, last_used_at__isnull=True).update(
            last_used_at=at
        )
    return bool(changed)


def organization_create(
    *, slug: str, name: str, time_zone: str = "UTC", owner_email: str, owner_password: str | None
) -> Organization:
    """Create a tenant and its first owner (used by the demo and by `create_organization`)."""
    with transaction.atomic():
        organization = Organization.objects.create(slug=slug, name=name, time_zone=time_zone)
        email = owner_email.lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User(username=email, email=email)
            if owner_password:
                user.set_password(owner_password)
            else:
                user.set_unusable_password()
            user.save()
        Membership.dangerously_unscoped.create(
            organization=organization, user=user, role=Role.OWNER
        )
    return organization
