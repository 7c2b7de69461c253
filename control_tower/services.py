"""Writes on organizations, memberships and API keys."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone

from control_tower.errors import DomainError, NotPermitted
from control_tower.models import ApiKey, Membership, Organization
from control_tower.realtime import notify_user_on_commit
from control_tower.tenancy.actors import API_KEY_KIND, Actor
from control_tower.tenancy.roles import Role
from control_tower.tenancy.secrets import issue_secret

User = get_user_model()


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


@transaction.atomic
def membership_create(
    *,
    actor: Actor,
    email: str,
    role: str,
    carrier=None,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
) -> Membership:
    """Add a person (created if new, by e-mail) to the actor's organization with a role.

    A new person without a password gets an unusable one (they set it through password reset).
    """
    _check_role_change(actor=actor, role=role, carrier=carrier)
    email = User.objects.normalize_email(email).lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User(username=email, email=email, first_name=first_name, last_name=last_name)
        if password:
            try:
                validate_password(password, user)
            except DjangoValidationError as exc:
                raise DomainError(
                    "The password is too weak.",
                    fields={"password": exc.messages},
                    code="validation_error",
                ) from exc
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    if Membership.objects.filter(user=user).exists():
        raise DomainError(
            f"{email} is already a member of this organization.",
            fields={"email": ["Already a member."]},
            code="validation_error",
        )
    return Membership.objects.create(
        organization=actor.organization, user=user, role=role, carrier=carrier
    )


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
